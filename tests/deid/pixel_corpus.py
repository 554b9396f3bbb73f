"""Real DICOM images with hand-measured burned-in text, for the pixel de-identification tests.

The images are the ones shipped inside three installed packages; nothing is downloaded:

* ``pydicom/<path>``: ``pydicom.data``'s ``test_files`` folder (pydicom itself),
* ``data_store/<name>``: the ``data`` folder of the ``data_store`` package (pydicom-data),
* ``deid/<path>``: the ``data`` folder of ``deid_data`` (deid-data); the two cine zips are named
  as the zip (``deid/ultrasounds/RGB_CINE.zip``) and :func:`corpus_path` hands back the single
  ``.dcm`` inside, extracted once into a cache folder.

``pixel_truth.json`` next to this module holds the ground truth (how it was measured is in its
``_about``); :func:`load_truth` reads it into frozen dataclasses. Boxes and regions are
``(x, y, width, height)`` in full-resolution pixels, x/y the top-left corner, frame 0.

A missing package raises :class:`FileNotFoundError` naming it, when a path is first asked for
(importing this module never fails for that reason); callers decide whether to skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "CACHE_DIR",
    "ROOTS",
    "TRUTH_FILE",
    "TruthImage",
    "TruthLine",
    "corpus_path",
    "load_truth",
    "no_text_files",
]

TRUTH_FILE = Path(__file__).with_name("pixel_truth.json")
"""The ground-truth file read by :func:`load_truth`."""

CACHE_DIR = Path(tempfile.gettempdir()) / "casebank-pixel-corpus"
"""Where the ``.dcm`` inside a zipped corpus file is extracted (once)."""

# prefix -> (importable package, folder under the package's directory, pip distribution name)
_PACKAGES: dict[str, tuple[str, str, str]] = {
    "pydicom": ("pydicom.data", "test_files", "pydicom"),
    "data_store": ("data_store", "data", "pydicom-data"),
    "deid": ("deid_data", "data", "deid-data"),
}

Box = tuple[int, int, int, int]


def _locate(prefix: str) -> Path:
    """The data folder behind ``prefix``, found through the installed package."""
    package, folder, distribution = _PACKAGES[prefix]
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:  # the parent package (pydicom for pydicom.data) is missing
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"pixel corpus: package {package!r} is not installed (pip install {distribution}), "
            f"so the {prefix}/... images are unavailable"
        )
    for location in spec.submodule_search_locations:
        root = Path(location) / folder
        if root.is_dir():
            return root
    raise FileNotFoundError(
        f"pixel corpus: package {package!r} is installed but has no {folder!r} folder "
        f"(looked in {list(spec.submodule_search_locations)})"
    )


class _Roots(Mapping[str, Path]):
    """``prefix -> data folder`` for the three packages, located lazily on first access."""

    def __getitem__(self, prefix: str) -> Path:
        if prefix not in _PACKAGES:
            raise KeyError(prefix)
        return _root(prefix)

    def __iter__(self) -> Iterator[str]:
        return iter(_PACKAGES)

    def __len__(self) -> int:
        return len(_PACKAGES)

    def __repr__(self) -> str:
        return f"ROOTS({', '.join(_PACKAGES)})"


@cache
def _root(prefix: str) -> Path:
    return _locate(prefix)


ROOTS: Mapping[str, Path] = _Roots()
"""``{"pydicom": ..., "data_store": ..., "deid": ...}``: the package data folders.

Looking one up raises :class:`FileNotFoundError` when its package is not installed.
"""


def corpus_path(name: str) -> Path:
    """The file for a corpus name such as ``"data_store/US1_UNCR.dcm"``.

    For a ``.zip`` name the single ``.dcm`` inside is extracted into :data:`CACHE_DIR` on first
    use (written under a temporary name, then renamed, so concurrent test workers never see a
    partial file) and that path is returned.
    """
    prefix, sep, rest = name.partition("/")
    if not sep or not rest or prefix not in _PACKAGES:
        raise ValueError(f"corpus name must start with one of {sorted(_PACKAGES)} and a '/': {name!r}")
    relative = Path(rest)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"corpus name must stay inside its package folder: {name!r}")
    path = ROOTS[prefix] / relative
    if not path.is_file():
        raise FileNotFoundError(f"pixel corpus: {name!r} not found at {path}")
    if path.suffix.lower() == ".zip":
        return _extracted(path, prefix)
    return path


def _extracted(archive: Path, prefix: str) -> Path:
    with zipfile.ZipFile(archive) as zf:
        members = [info for info in zf.infolist() if not info.is_dir() and info.filename.lower().endswith(".dcm")]
        if len(members) != 1:
            raise FileNotFoundError(
                f"pixel corpus: {archive} should hold exactly one .dcm, found {[m.filename for m in members]}"
            )
        member = members[0]
        stat = archive.stat()
        # Keyed by the archive's size and mtime so a different package version never reuses a stale copy.
        folder = CACHE_DIR / f"{prefix}-{archive.stem}-{stat.st_size}-{int(stat.st_mtime)}"
        target = folder / Path(member.filename).name
        if target.is_file() and target.stat().st_size == member.file_size:
            return target
        folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, zf.open(member) as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache is shared by test runs
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return target


@dataclass(frozen=True)
class TruthLine:
    """One line of burned-in text."""

    box: Box
    """Tight box around the glyph pixels, ``(x, y, width, height)``, frame 0."""
    text: str
    """What the line says (truncations and ellipses as shown)."""
    identifying: bool
    """Names, IDs, accession numbers, dates, institutions, people, and times on a date's line."""
    kind: str
    """One of name, id, date, time, institution, person, technical, label, marker, measurement, manufacturer, other."""
    inside_image: bool
    """At least half of the box lies inside the image's ``image_regions``."""


@dataclass(frozen=True)
class TruthImage:
    """Files sharing one pixel layout, with where their diagnostic image and text lines are."""

    files: tuple[str, ...]
    rows: int
    columns: int
    frames: int
    image_regions: tuple[Box, ...]
    lines: tuple[TruthLine, ...]
    notes: str


def _box(value: list[int]) -> Box:
    x, y, w, h = (int(v) for v in value)
    return (x, y, w, h)


@cache
def _truth() -> tuple[tuple[TruthImage, ...], tuple[str, ...]]:
    data = json.loads(TRUTH_FILE.read_text(encoding="utf-8"))
    images = tuple(
        TruthImage(
            files=tuple(entry["files"]),
            rows=int(entry["rows"]),
            columns=int(entry["columns"]),
            frames=int(entry["frames"]),
            image_regions=tuple(_box(region) for region in entry["image_regions"]),
            lines=tuple(
                TruthLine(
                    box=_box(line["box"]),
                    text=str(line["text"]),
                    identifying=bool(line["identifying"]),
                    kind=str(line["kind"]),
                    inside_image=bool(line["inside_image"]),
                )
                for line in entry["lines"]
            ),
            notes=str(entry.get("notes", "")),
        )
        for entry in data["images"]
    )
    return images, tuple(data["no_text"])


def load_truth() -> list[TruthImage]:
    """Every image with burned-in text, as written down in ``pixel_truth.json``."""
    return list(_truth()[0])


def no_text_files() -> list[str]:
    """Corpus names of the images with pixel data that were checked and carry no burned-in text."""
    return list(_truth()[1])
