"""Demo content: real DICOM files shipped with pydicom, given fresh UIDs and demo teaching text.

The files reach the archive the way a PACS would send them: C-STORE to the running receiver.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.presentation import PresentationContext, build_context

from .deid import Option, Profile
from .deid.engine import deidentify
from .deid.keys import ProjectKey
from .tce.atfi import TeachingFileInfo, build_teaching_file_info
from .tce.manifest import build_manifest

DEMO_AE = "CASEBANK-DEMO"
UID_PREFIX = "1.2.826.0.1.3680043.10.1436."  # demo objects only; derived deterministically below


@dataclass(frozen=True)
class DemoCase:
    key: str
    files: tuple[str, ...]
    title: str
    history: str
    findings: str
    diagnosis: str
    discussion: str
    keywords: tuple[str, ...]
    codes: tuple[tuple[str, str, str], ...] = ()  # (coding scheme designator, code, meaning)


DEMO_CASES = (
    DemoCase(
        key="ct",
        files=("CT_small.dcm",),
        title="Demo: thoracic spine CT slice for window and level practice",
        history="Demonstration case built from a public pydicom test image.",
        findings="Single axial CT slice through a thoracic vertebra, shown in a bone window. Practise adjusting the window to separate soft tissue from bone.",
        diagnosis="No diagnosis: teaching example for CT windowing",
        discussion="Hounsfield units let one image be read with several windows: lung, soft tissue, bone.",
        keywords=("windowing", "CT basics"),
    ),
    DemoCase(
        key="mr-liver",
        files=("examples_overlay.dcm",),
        title="Demo: abdominal MR with an overlay plane",
        history="Demonstration case built from a public pydicom test image of the abdomen.",
        findings="Axial contrast-enhanced MR of the upper abdomen: a rounded heterogeneous lesion in the right lobe of the liver. An overlay plane is stored in the header.",
        diagnosis="Focal liver lesion (demo label)",
        discussion="Overlays are burned in by some modalities; the edge de-identifier removes them.",
        keywords=("liver", "overlay", "MR"),
        codes=(("I10", "K76.9", "Liver disease, unspecified"),),
    ),
    DemoCase(
        key="us-cine",
        files=("examples_ybr_color.dcm",),
        title="Demo: echocardiography cine loop (JPEG baseline, 30 frames)",
        history="Demonstration case built from a public pydicom multi-frame ultrasound.",
        findings="Transthoracic echocardiogram, apical four-chamber view, 30-frame cine loop with burned-in annotations.",
        diagnosis="No diagnosis: example of a multi-frame compressed image",
        discussion="Ultrasound often carries burned-in text; such images always pass through pixel cleaning.",
        keywords=("ultrasound", "echocardiography", "cine"),
    ),
    DemoCase(
        key="nm-bone",
        files=("JPEG2000.dcm",),
        title="Demo: whole-body bone scintigraphy (JPEG 2000)",
        history="Demonstration case built from a public pydicom nuclear medicine image.",
        findings="Whole-body bone scan, anterior projection.",
        diagnosis="Bone metastases (demo label)",
        discussion="Bone scans show osteoblastic activity; metastatic cancers of prostate and breast are typical.",
        keywords=("bone scan", "metastases", "nuclear medicine"),
        codes=(("I10", "C79.5", "Secondary malignant neoplasm of bone and bone marrow"),),
    ),
)


def demo_datasets(case: DemoCase) -> Iterator[Dataset]:
    """The case's files with new, deterministic UIDs and no names, so each demo case is its own study."""
    study_uid = generate_uid(UID_PREFIX, entropy_srcs=[case.key, "study"])
    for number, name in enumerate(case.files, start=1):
        ds = dcmread(get_testdata_file(name))
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = generate_uid(UID_PREFIX, entropy_srcs=[case.key, name, "series"])
        ds.SOPInstanceUID = generate_uid(UID_PREFIX, entropy_srcs=[case.key, name, "instance"])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientName = f"Demo^{case.key}"
        ds.PatientID = f"DEMO-{case.key}"
        ds.StudyDescription = case.title.removeprefix("Demo: ")
        ds.InstanceNumber = number
        yield mark_deidentified(ds)


def demo_export(case: DemoCase, author: str, gmc: str) -> list[Dataset]:
    """The case as an export manager sends it: images, the ATFI report and the KOS manifest."""
    images = list(demo_datasets(case))
    info = TeachingFileInfo(
        author_name=author, author_gmc=gmc, abstract=case.title, history=case.history,
        findings=case.findings, diagnosis=case.diagnosis, discussion=case.discussion,
        keywords=case.keywords, codes=case.codes,
    )
    report = build_teaching_file_info(
        info, images, sop_instance_uid=generate_uid(UID_PREFIX, entropy_srcs=[case.key, "atfi"])
    )
    manifest = build_manifest(
        [*images, mark_deidentified(report)], description=f"Casebank demo case {case.key}",
        observer_name=author, sop_instance_uid=generate_uid(UID_PREFIX, entropy_srcs=[case.key, "kos"]),
    )
    return [*images, report, mark_deidentified(manifest)]


# Public test files identify nobody, so their UIDs and dates may stay: the stand-in profile keeps them.
_TEST_FILE_PROFILE = Profile.of(
    Option.RETAIN_UIDS, Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_PATIENT_CHARACTERISTICS,
    Option.CLEAN_DESCRIPTORS, Option.CLEAN_STRUCTURED_CONTENT, name="public-test-files",
)


def mark_deidentified(ds: Dataset) -> Dataset:
    """De-identify a public test file in place, as the edge would, with UIDs and dates kept.

    Only for content that identifies nobody already (pydicom's test files, the demo); real exports
    go through the edge with the site's profile. The archive's door check sees an honest result.
    """
    result = deidentify(ds, _TEST_FILE_PROFILE, ProjectKey.generate(), patient_pseudonym=_pseudonym_of(ds))
    for tag in list(ds.keys()):
        del ds[tag]
    for element in result.dataset:
        ds.add(element)
    ds.file_meta = result.dataset.file_meta
    return ds


def _pseudonym_of(ds: Dataset) -> str | None:
    patient_id = str(ds.get("PatientID", "") or "").strip()
    return patient_id if patient_id.startswith("PSEUDO") else None


def send(datasets: list[Dataset], host: str, port: int, called_ae: str, calling_ae: str = DEMO_AE) -> list[int]:
    """C-STORE each dataset; returns the status of each store."""
    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = _contexts_for(datasets)
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        raise ConnectionError(f"could not associate with {called_ae} at {host}:{port}")
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def _contexts_for(datasets: list[Dataset]) -> list[PresentationContext]:
    pairs = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}
    return [build_context(sop_class, [syntax]) for sop_class, syntax in sorted(pairs)]
