"""Reading release files: CSV/TSV with a header, and RF2 tab-separated tables.

Every failure becomes a :class:`TerminologyError` naming the file, the line and the reason.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .model import Progress, TerminologyError

REPORT_EVERY = 50_000
"""Rows between progress reports while reading."""


class RowCounter:
    """Counts rows read across a release's files and reports them as ``progress(rows, None)``."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.rows = 0

    def tick(self) -> None:
        self.rows += 1
        if self.progress is not None and self.rows % REPORT_EVERY == 0:
            self.progress(self.rows, None)


@contextmanager
def _opened(path: Path) -> Iterator[TextIO]:
    """UTF-8 text (a BOM is skipped; ``.gz`` is decompressed), with errors naming the file."""
    if path.is_dir():
        raise TerminologyError(f"{path}: is a folder, not a file")
    try:
        raw = gzip.open(path, "rt", encoding="utf-8-sig", newline="") if path.suffix == ".gz" else (
            path.open(encoding="utf-8-sig", newline="")
        )
    except FileNotFoundError:
        raise TerminologyError(f"{path}: no such file") from None
    except OSError as exc:
        raise TerminologyError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        with raw:
            yield raw
    except UnicodeDecodeError as exc:
        raise TerminologyError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise TerminologyError(f"{path}: not a readable gzip file ({exc})") from None


def read_csv(path: Path, what: str, required: Sequence[Sequence[str]], counter: RowCounter | None = None,
             ) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV (or TSV: a tab in the header line) file with a header.

    ``required`` lists, per needed column, the header names accepted for it (case-insensitive);
    rows are keyed by the first of those names, other columns by their lower-cased header.
    """
    with _opened(path) as text:
        first = text.readline()
        reader = csv.reader(text, delimiter="\t" if "\t" in first else ",")
        header = [name.strip().lower() for name in next(csv.reader([first], delimiter=reader.dialect.delimiter), [])]
        keys = list(header)
        for names in required:
            found = next((i for i, name in enumerate(header) if name in {n.lower() for n in names}), None)
            if found is None:
                raise TerminologyError(
                    f"{path}: not {what}: the header has no '{names[0]}' column (found: {', '.join(header) or 'nothing'})"
                )
            keys[found] = names[0].lower()
        try:
            for cells in reader:
                if counter is not None:
                    counter.tick()
                if any(cell.strip() for cell in cells):
                    yield reader.line_num + 1, {key: cell.strip() for key, cell in zip(keys, cells)}
        except csv.Error as exc:
            raise TerminologyError(f"{path}: line {reader.line_num + 1}: {exc}") from None


def read_rf2(path: Path, columns: Sequence[str], counter: RowCounter | None = None) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of an RF2 table, after checking its header is exactly ``columns``.

    RF2 has no quoting: a line is fields joined by tabs, so a term may hold quotes as they are.
    """
    with _opened(path) as text:
        header = text.readline().rstrip("\r\n").split("\t")
        if header != list(columns):
            raise TerminologyError(
                f"{path}: not an RF2 file of this kind: header is '{' '.join(header)}', expected '{' '.join(columns)}'"
            )
        for number, line in enumerate(text, start=2):
            if counter is not None:
                counter.tick()
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != len(columns):
                if not line.strip():
                    continue
                raise TerminologyError(
                    f"{path}: line {number}: expected {len(columns)} tab-separated fields, found {len(fields)}"
                )
            yield number, fields
