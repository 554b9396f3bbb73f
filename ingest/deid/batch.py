"""`casebank deid IN OUT`: the de-identifier over a file or a folder tree, for scripts and audits.

Output files are named by their new UIDs (``OUT/STUDY/SERIES/SOP.dcm``), never by input names,
which often carry patient names. Every input ends in exactly one :class:`Outcome`, with the
reason: refused (not DICOM, truncated, or without the UIDs its name is made of), held (burned-in
text that could not be cleaned with certainty: a person must look), written, or skipped as a
duplicate. Nothing is overwritten: each file is written under a temporary name and linked into
place only if the name is free; an identical file already there is a duplicate, a different one
a collision, written alongside as ``SOP.2.dcm``.
"""

from __future__ import annotations

import enum
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pydicom.datadict import dictionary_description, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import MediaStorageDirectoryStorage

from ..validation import MalformedObject, NotDicom, infer_transfer_syntax, read_file
from .engine import deidentify
from .keys import ProjectKey
from .pixels import PixelCleaning, PixelCleaningFailed, clean_pixel_data
from .profile import Profile

Progress = Callable[[int, int, Path], None]

REQUIRED_UIDS = {
    "SOPClassUID": "the IOD is known by it",
    "StudyInstanceUID": "the output is named by it",
    "SeriesInstanceUID": "the output is named by it",
    "SOPInstanceUID": "the output is named by it",
}
"""Attributes without which an input is refused, and why each is needed."""

REPORT_NAME = "deid-report.json"


class Outcome(enum.StrEnum):
    """How one input ended."""

    WRITTEN = "written"
    HELD = "held"  # PixelCleaningFailed: burned-in text a person must look at
    REFUSED = "refused"
    DUPLICATE = "skipped-duplicate"


@dataclass(frozen=True)
class BlankedRegion:
    """A rectangle of the image that pixel cleaning blanked, and what found it."""

    x: int
    y: int
    width: int
    height: int
    source: str
    text: str


@dataclass(frozen=True)
class PixelReport:
    """What Clean Pixel Data did to one written file."""

    scanned: bool
    reason: str
    regions: tuple[BlankedRegion, ...] = ()
    changed_fraction: float = 0.0

    @classmethod
    def of(cls, cleaning: PixelCleaning) -> PixelReport:
        regions = cleaning.findings.regions if cleaning.findings is not None else ()
        return cls(
            cleaning.scanned, cleaning.reason,
            tuple(BlankedRegion(r.x, r.y, r.width, r.height, r.source, r.text) for r in regions),
            cleaning.changed_fraction,
        )


@dataclass(frozen=True)
class FileReport:
    """One input's outcome.

    Attributes
    ----------
    input : Path
        The input file.
    outcome : Outcome
    reason : str
        Why it was refused or held; for a written file, a collision; for a duplicate, of what.
    output : Path or None
        The file written, or for a duplicate the identical file already there.
    pixels : PixelReport or None
        For a written file: whether pixels were scanned, what was blanked.
    notes : tuple[str, ...]
        What the reader warned about and what was inferred (e.g. a Transfer Syntax).
    """

    input: Path
    outcome: Outcome
    reason: str = ""
    output: Path | None = None
    pixels: PixelReport | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        record = asdict(self)
        record["input"], record["output"] = str(self.input), str(self.output) if self.output else None
        return record


@dataclass
class BatchReport:
    """Every input's outcome, in input order."""

    files: list[FileReport] = field(default_factory=list)

    def of(self, outcome: Outcome) -> list[FileReport]:
        return [f for f in self.files if f.outcome is outcome]

    @property
    def written(self) -> list[Path]:
        return [f.output for f in self.of(Outcome.WRITTEN) if f.output is not None]

    @property
    def failed(self) -> list[FileReport]:
        """Refused and held: a person has to act on these."""
        return [f for f in self.files if f.outcome in (Outcome.REFUSED, Outcome.HELD)]

    def counts(self) -> dict[str, int]:
        return {outcome.value: len(self.of(outcome)) for outcome in Outcome}

    def to_json(self) -> dict[str, object]:
        return {"counts": self.counts(), "files": [f.to_json() for f in self.files]}


def input_files(source: Path, exclude: Path | None = None) -> list[Path]:
    """Every file under ``source`` (or ``source`` itself), except under ``exclude`` (the output)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a file nor a folder")
    skip = exclude.resolve() if exclude is not None else None
    if skip is not None and source.resolve().is_relative_to(skip):
        skip = None  # the input folder is inside the output folder: all of it is input
    return sorted(
        p for p in source.rglob("*")
        if p.is_file() and not (skip is not None and p.resolve().is_relative_to(skip))
    )


def deidentify_files(
    source: Path, target: Path, profile: Profile, key: ProjectKey, progress: Progress | None = None
) -> BatchReport:
    """De-identify every file under ``source`` into ``target``; each input reported, none fatal."""
    files = input_files(source, exclude=target)
    report = BatchReport()
    target.mkdir(parents=True, exist_ok=True)
    outputs = _Outputs(target)
    with _pydicom_log() as log:
        for number, path in enumerate(files, start=1):
            log.clear()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                entry = _one(path, outputs, profile, key)
            notes = dict.fromkeys([*entry.notes, *(str(w.message) for w in caught), *log])  # once each, in order
            report.files.append(replace(entry, notes=tuple(notes)))
            if progress is not None:
                progress(number, len(files), path)
    return report


class _Refused(Exception):
    """An input that cannot be de-identified, and why."""

    def __init__(self, reason: str, notes: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason, self.notes = reason, notes


def _one(path: Path, outputs: _Outputs, profile: Profile, key: ProjectKey) -> FileReport:
    notes: tuple[str, ...] = ()
    try:
        ds, notes = _read(path)
        cleaning = clean_pixel_data(ds)
        result = deidentify(cleaning.dataset, profile, key, pixels_cleaned=cleaning.scanned).dataset
        outcome, output, reason = outputs.place(path, result, _encode(result))
    except _Refused as refused:
        return FileReport(path, Outcome.REFUSED, refused.reason, notes=refused.notes)
    except PixelCleaningFailed as exc:
        return FileReport(path, Outcome.HELD, f"burned-in text could not be cleaned safely: {exc}", notes=notes)
    except Exception as exc:  # noqa: BLE001 - any other reason is this file's: reported by name, the batch goes on
        return FileReport(path, Outcome.REFUSED, f"cannot be de-identified: {type(exc).__name__}: {exc}", notes=notes)
    pixels = PixelReport.of(cleaning) if outcome is Outcome.WRITTEN else None
    return FileReport(path, outcome, reason, output, pixels, notes)


def _read(path: Path) -> tuple[Dataset, tuple[str, ...]]:
    """The input whole, with File Meta and the UIDs it is named by, and what reading it noted."""
    try:
        ds = read_file(path)
    except NotDicom as exc:
        raise _Refused(f"not a DICOM file ({exc})") from exc
    except MalformedObject as exc:
        raise _Refused(str(exc)) from exc
    except OSError as exc:
        raise _Refused(f"cannot be read: {exc}") from exc
    notes: tuple[str, ...] = ()
    if ds.preamble is None:
        what = "preamble" if ds.file_meta else "preamble or File Meta Information"
        notes += (f"no {what}: read as a data set, written as a Part 10 file",)
    try:
        inferred = infer_transfer_syntax(ds)
    except MalformedObject as exc:
        raise _Refused(str(exc), notes) from exc
    if inferred is not None:
        notes += (f"no Transfer Syntax UID: {inferred.name} inferred from the encoding read",)
    problem = not_deidentifiable(ds)
    if problem:
        raise _Refused(problem, notes)
    return ds, notes


def not_deidentifiable(ds: Dataset) -> str:
    """Why ``ds`` cannot be de-identified into a named output file; empty if it can."""
    meta = getattr(ds, "file_meta", None) or {}
    if MediaStorageDirectoryStorage in (str(ds.get("SOPClassUID", "")), str(meta.get("MediaStorageSOPClassUID", ""))):
        return "a DICOMDIR (Media Storage Directory): it indexes other files; de-identify those instead"
    for keyword, why in REQUIRED_UIDS.items():
        if not str(ds.get(keyword, "") or "").strip():
            tag = tag_for_keyword(keyword) or 0
            return f"no {dictionary_description(tag)} ({tag >> 16:04X},{tag & 0xFFFF:04X}): {why}"
    return ""


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class _Outputs:
    """The output folder: what this run wrote, and the rule that nothing is written twice."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: dict[Path, Path] = {}  # output -> the input it came from

    def place(self, source: Path, ds: Dataset, encoded: bytes) -> tuple[Outcome, Path, str]:
        """Write ``encoded`` under the first free name for ``ds``; identical content is not written again."""
        folder = self.root / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID)
        folder.mkdir(parents=True, exist_ok=True)
        first: Path | None = None
        number = 1
        while True:
            name = f"{ds.SOPInstanceUID}.dcm" if number == 1 else f"{ds.SOPInstanceUID}.{number}.dcm"
            candidate = folder / name
            if candidate.exists():
                if candidate.read_bytes() == encoded:
                    return Outcome.DUPLICATE, candidate, f"duplicate of {self._origin(candidate)}, not written again"
                first = first or candidate
                number += 1
                continue
            if not _write_new(candidate, encoded):
                continue  # taken meanwhile: look at it again
            self.written[candidate] = source
            if first is None:
                return Outcome.WRITTEN, candidate, ""
            return Outcome.WRITTEN, candidate, (
                f"SOP Instance UID collision with {self._origin(first)} (different content): written alongside as {name}"
            )

    def _origin(self, output: Path) -> str:
        source = self.written.get(output)
        return str(source) if source is not None else f"{output} (already in the output folder before this run)"


def _write_new(destination: Path, data: bytes) -> bool:
    """Write ``data`` as ``destination`` only if no such file exists; False if one does.

    The bytes go to a temporary file first and are linked into place, so the name either does
    not exist or holds the whole file.
    """
    fd, tmp = tempfile.mkstemp(dir=destination.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.link(tmp, destination)
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


@contextmanager
def _pydicom_log() -> Iterator[list[str]]:
    """pydicom's log records during the run, per file, instead of on the terminal."""
    logger = logging.getLogger("pydicom")
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    handler, propagate = Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def write_report(report: BatchReport, path: Path, **context: object) -> None:
    """The full report as JSON, with ``context`` (input, profile...) first; replaces an earlier one at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({**context, **report.to_json()}, out, indent=1, default=str)
            out.write("\n")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def project_key(keys_folder: Path, project: str | None) -> ProjectKey:
    """A project's key kept under the data folder (created on first use); a one-off key without a project.

    Without a project the mapping is thrown away with the key: teaching exports are irreversible.
    """
    if project is None:
        return ProjectKey.generate()
    if not project.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"project name {project!r} must be letters, digits, '-' or '_'")
    path = keys_folder / f"{project}.key"
    if not path.exists():
        keys_folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(ProjectKey.generate().secret)
    return ProjectKey(path.read_bytes())
