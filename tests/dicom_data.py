"""Real DICOM files shipped with pydicom, re-identified with fresh UIDs so each test owns its study."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ingest.demo import mark_deidentified
from ingest.tce.atfi import TeachingFileInfo


def study(names: list[str], *, description: str = "", **attributes: object) -> list[Dataset]:
    """One new study holding a copy of each named pydicom test file, each its own series."""
    study_uid = generate_uid()
    pseudonym = f"PSEUDO^{study_uid[-8:]}"
    datasets = []
    for number, name in enumerate(names, start=1):
        ds = dcmread(test_file(name))
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.PatientName = pseudonym, pseudonym
        mark_deidentified(ds)
        ds.SeriesNumber = number
        ds.InstanceNumber = 1
        if description:
            ds.StudyDescription = description
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        datasets.append(ds)
    return datasets


SYNTHETIC = ("DX_monochrome1.dcm", "CT_jpeg_lossless_sv1.dcm")
"""Files pydicom does not ship, made once per test run: a DX image (MONOCHROME1, as many
radiographs are) and a CT in JPEG Lossless SV1 (process 14, encoded by dcmtk's dcmcjpeg)."""


def test_file(name: str) -> str:
    """A pydicom test file by name, or one of :data:`SYNTHETIC`."""
    if name not in SYNTHETIC:
        return get_testdata_file(name)
    folder = Path(tempfile.gettempdir()) / f"casebank-synthetic-{os.getpid()}"
    path = folder / name
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        _make_synthetic(name, path)
    return str(path)


def _make_synthetic(name: str, path: Path) -> None:
    if name == "DX_monochrome1.dcm":
        yy, xx = np.mgrid[:256, :256]
        pixels = (xx * 8 + ((yy - 128) ** 2 + (xx - 128) ** 2 < 60 ** 2) * 1500).astype(np.uint16)
        ds = Dataset()
        ds.SOPClassUID, ds.Modality = "1.2.840.10008.5.1.4.1.1.1.1", "DX"  # Digital X-Ray, for presentation
        ds.BodyPartExamined, ds.PresentationIntentType = "CHEST", "FOR PRESENTATION"
        ds.set_pixel_data(pixels, "MONOCHROME1", 12)
        ds.WindowCenter, ds.WindowWidth = 2000, 4000
        ds.ensure_file_meta()
        ds.save_as(path, enforce_file_format=True)
    else:  # JPEG Lossless, first-order prediction (process 14, selection value 1)
        plain = path.with_suffix(".plain.dcm")
        dcmread(get_testdata_file("CT_small.dcm")).save_as(plain, enforce_file_format=True)
        subprocess.run(["/usr/bin/dcmcjpeg", "+e1", str(plain), str(path)], check=True, capture_output=True)


def write(datasets: list[Dataset], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def tce_export(
    images: list[Dataset], info: TeachingFileInfo, *, description: str = "", purpose: str = "teaching"
) -> tuple[Dataset, Dataset]:
    """The ATFI report and the KOS manifest an export manager sends with `images`."""
    from ingest.tce.atfi import build_teaching_file_info  # noqa: PLC0415
    from ingest.tce.manifest import build_manifest

    report = mark_deidentified(build_teaching_file_info(info, images))
    manifest = mark_deidentified(
        build_manifest([*images, report], purpose=purpose, description=description, observer_name=info.author_name)
    )
    return report, manifest
