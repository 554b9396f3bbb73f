"""Real DICOM files shipped with pydicom, re-identified with fresh UIDs so each test owns its study."""

from __future__ import annotations

from pathlib import Path

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
        ds = dcmread(get_testdata_file(name))
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
