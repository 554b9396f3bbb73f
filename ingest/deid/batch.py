"""`casebank deid IN OUT`: the de-identifier over a file or a folder tree, for scripts and audits.

Output files are named by their new UIDs (``OUT/STUDY/SERIES/SOP.dcm``), never by input names,
which often carry patient names. Each file is written to a temporary name and renamed, so a
failure leaves no half-written output; a bad input is reported by name and reason and skipped.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from .engine import deidentify
from .keys import ProjectKey
from .pixels import PixelCleaningFailed, clean_pixel_data
from .profile import Profile

Progress = Callable[[int, int, Path], None]


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def input_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a file nor a folder")
    return sorted(p for p in source.rglob("*") if p.is_file())


def deidentify_files(
    source: Path, target: Path, profile: Profile, key: ProjectKey, progress: Progress | None = None
) -> BatchReport:
    files = input_files(source)
    report = BatchReport()
    target.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(files, start=1):
        try:
            report.written.append(_one(path, target, profile, key))
        except (InvalidDicomError, EOFError) as exc:
            report.failed.append((path, f"not a DICOM file ({exc})"))
        except PixelCleaningFailed as exc:
            report.failed.append((path, f"held for a person: burned-in text could not be cleaned safely ({exc})"))
        except Exception as exc:  # every other reason is reported per file, and the batch goes on
            report.failed.append((path, f"{type(exc).__name__}: {exc}"))
        if progress is not None:
            progress(number, len(files), path)
    return report


def _one(path: Path, target: Path, profile: Profile, key: ProjectKey) -> Path:
    ds = clean_pixel_data(dcmread(path)).dataset  # raises PixelCleaningFailed: the file is reported, not written
    result = deidentify(ds, profile, key).dataset
    destination = target / str(result.StudyInstanceUID) / str(result.SeriesInstanceUID) / f"{result.SOPInstanceUID}.dcm"
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            result.save_as(out, enforce_file_format=True)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return destination


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
