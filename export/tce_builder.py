"""A case as the TCE submission another archive receives: rebuilt from what this archive holds now.

The images as stored; a new ATFI report written from the case's current text, codes, keywords,
ATFI extras and author (highdicom, as the edge writes it); a Grayscale Softcopy Presentation State
per series with a saved display (window, and the crop as the displayed area); each attachment as
Secondary Capture images (a PDF one page each, rendered by poppler's pdftoppm: PS3.15's Basic
Profile replaces Encapsulated Document (0042,0011) by a dummy, so an Encapsulated PDF never passes
the door check here or at the receiver); and a new KOS manifest naming all of them. The
case's old manifests, reports and presentation states are not sent again: the new ones say what
the case says today. Every new object belongs to the case's study and has new UIDs; the
de-identification declaration of the images is copied to them (their content is the case's
teaching text, judged by the door check like anything else).

``strip_sender`` leaves out the author's name, GMC number, affiliation and contact and the
manifest's observer: a public forward names nobody who made the case.
"""

from __future__ import annotations

import copy
import io
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import highdicom
import numpy as np
from highdicom.pr import GrayscaleSoftcopyPresentationState, SoftcopyVOILUTTransformation
from highdicom.sc import SCImage
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    GrayscaleSoftcopyPresentationStateStorage,
    KeyObjectSelectionDocumentStorage,
    PYDICOM_IMPLEMENTATION_UID,
    generate_uid,
)
from sqlalchemy.orm import Session

from archive.blobs import BlobStore
from archive.display import NON_IMAGE_MODALITIES
from archive.errors import InvalidInput
from archive.models import Attachment, Case, Series
from ingest.tce import atfi, manifest
from ingest.validation import read_complete

MANUFACTURER = "Casebank"
SOFTWARE = "casebank"
DEID_DECLARATION = (
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "LongitudinalTemporalInformationModified",
)
SKIPPED_CLASSES = frozenset({
    str(KeyObjectSelectionDocumentStorage), str(GrayscaleSoftcopyPresentationStateStorage), *atfi.SR_SOP_CLASSES,
})
"""Old manifests, reports and presentation states of the case: the export writes new ones."""

TEACHING_EXTRAS = ("organ_system", "pathology", "anatomy", "modality", "category", "level")
SENDER_EXTRAS = ("affiliation", "contact")
PDFTOPPM = shutil.which("pdftoppm") or "/usr/bin/pdftoppm"


def build_case_export(
    session: Session, blobs: BlobStore, case: Case, *, strip_sender: bool = False
) -> list[Dataset]:
    """The case's TCE objects, in the order they should travel: images, attachments, presentation
    states, the report, and the manifest last (a receiver assembles when the manifest's list is whole).

    Raises InvalidInput for a case without images, or with images of several studies (a manifest
    names one study)."""
    images, displayed = _images(blobs, case)
    if not images:
        raise InvalidInput(f"case {case.id} holds no images to forward")
    studies = {str(ds.StudyInstanceUID) for ds in images}
    if len(studies) > 1:
        raise InvalidInput(f"case {case.id} holds {len(studies)} studies; a TCE manifest names one study, "
                           "so it cannot be forwarded as one submission")
    reference = images[0]
    attachments = [page for number, attachment in enumerate(sorted(case.attachments, key=lambda a: a.id), start=1)
                   for page in _attachment_objects(blobs, attachment, reference, number)]
    states = [_presentation_state(series, shown, number)
              for number, (series, shown) in enumerate(displayed, start=1)]
    report = atfi.build_teaching_file_info(teaching_file_info(case, strip_sender=strip_sender),
                                           [*images, *attachments, *states])
    # no observer name: the Basic Profile replaces Person Name (0040,A123) by a dummy; the
    # report's Author item says who made the case
    kos = manifest.build_manifest([*images, *attachments, *states, report], purpose="teaching",
                                  description=case.title or "")
    new = [*attachments, *states, report, kos]
    for ds in new:
        _declare_deidentified(ds, reference)
        _file_meta(ds)
    return [*images, *new]


def teaching_file_info(case: Case, *, strip_sender: bool = False) -> atfi.TeachingFileInfo:
    """What the ATFI report states: the case as it reads now."""
    extra = dict(case.teaching_extra or {})
    confirmed = str(extra.get("diagnosis_confirmed", "")).strip().lower()
    fields: dict[str, str] = {name: str(extra.get(name, "") or "") for name in TEACHING_EXTRAS}
    if not strip_sender:
        fields.update({name: str(extra.get(name, "") or "") for name in SENDER_EXTRAS})
    return atfi.TeachingFileInfo(
        author_name="" if strip_sender else case.author_name,
        author_gmc="" if strip_sender else case.author_gmc,
        abstract=case.title or "",
        keywords=tuple(k for k in case.keywords or () if k.strip()),
        history=case.history or "",
        findings=case.findings or "",
        discussion=case.discussion or "",
        differential=case.differential or "",
        diagnosis=case.diagnosis or "",
        diagnosis_confirmed={"yes": True, "no": False}.get(confirmed),
        codes=tuple((c.system, c.code, c.display) for c in case.codes),
        **fields,
    )


def _images(blobs: BlobStore, case: Case) -> tuple[list[Dataset], list[tuple[Series, list[Dataset]]]]:
    """Every stored object of the case but its old TCE documents, and the series with a saved
    display with their image objects."""
    images: list[Dataset] = []
    displayed: list[tuple[Series, list[Dataset]]] = []
    for study in case.studies:
        for series in study.series:
            shown: list[Dataset] = []
            for instance in series.instances:
                if instance.sop_class_uid in SKIPPED_CLASSES:
                    continue
                ds = read_complete(blobs.read(instance.blob_sha256))
                if manifest.is_manifest(ds) or atfi.is_teaching_file_info(ds):
                    continue
                images.append(ds)
                if "PixelData" in ds and series.modality not in NON_IMAGE_MODALITIES:
                    shown.append(ds)
            if shown and series.default_window_center is not None and series.default_window_width is not None:
                displayed.append((series, shown))
    return images, displayed


def _presentation_state(series: Series, images: list[Dataset], number: int) -> Dataset:
    state = GrayscaleSoftcopyPresentationState(
        referenced_images=images,
        series_instance_uid=generate_uid(),
        series_number=9000 + number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER,
        software_versions=f"{SOFTWARE} (highdicom {highdicom.__version__})",
        device_serial_number="1",
        content_label="SAVED_DISPLAY",
        institution_name=None,
        content_description="How the series opens for everyone: the saved window and region",
        voi_lut_transformations=[SoftcopyVOILUTTransformation(
            window_center=float(series.default_window_center),  # type: ignore[arg-type]
            window_width=float(series.default_window_width),  # type: ignore[arg-type]
        )],
    )
    del state.DeviceSerialNumber  # Type 3 in General Equipment; the Basic Profile removes it
    crop = series.default_crop
    if crop:  # the displayed area, in 1-based pixel columns and rows (PS3.3 C.10.4)
        area = state.DisplayedAreaSelectionSequence[0]
        left, top = int(round(crop["x"])) + 1, int(round(crop["y"])) + 1
        area.DisplayedAreaTopLeftHandCorner = [left, top]
        area.DisplayedAreaBottomRightHandCorner = [left + max(int(round(crop["width"])), 1) - 1,
                                                   top + max(int(round(crop["height"])), 1) - 1]
        area.PresentationSizeMode = "SCALE TO FIT"
    return state


def _attachment_objects(blobs: BlobStore, attachment: Attachment, reference: Dataset, number: int) -> list[Dataset]:
    data = blobs.read(attachment.blob_sha256)
    pages = pdf_pages(data) if attachment.media_type == "application/pdf" else [data]
    series_uid = generate_uid()
    return [secondary_capture(page, attachment.filename, reference, number, page_number, series_uid)
            for page_number, page in enumerate(pages, start=1)]


def pdf_pages(data: bytes, dpi: int = 100) -> list[bytes]:
    """Each page of a PDF as PNG, by poppler's pdftoppm."""
    with tempfile.TemporaryDirectory(prefix="casebank-pdf-") as folder:
        source = Path(folder) / "attachment.pdf"
        source.write_bytes(data)
        try:
            subprocess.run([PDFTOPPM, "-r", str(dpi), "-png", str(source), str(Path(folder) / "page")],
                           check=True, capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            raise InvalidInput(f"a PDF attachment could not be rendered for sending: {exc}") from exc
        return [page.read_bytes() for page in sorted(Path(folder).glob("page-*.png"),
                                                     key=lambda p: int(p.stem.rsplit("-", 1)[1]))]


def secondary_capture(data: bytes, title: str, reference: Dataset, number: int, page: int = 1,
                      series_uid: str | None = None) -> Dataset:
    """A JPEG or PNG picture (histology, a page of a paper) as a Secondary Capture image, with highdicom."""
    with Image.open(io.BytesIO(data)) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    image = SCImage.from_ref_dataset(
        ref_dataset=manifest.evidence_for_highdicom([reference])[0],
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=("L", "F"),
        series_instance_uid=series_uid or generate_uid(),
        series_number=9200 + number,
        sop_instance_uid=generate_uid(),
        instance_number=page,
        manufacturer=MANUFACTURER,
    )
    image.PatientOrientation = None  # Type 2C: not known for an attached picture
    image.SeriesDescription = f"Attachment: {title}"[:64]
    image.BurnedInAnnotation = "NO"  # teaching material the editor attached, not a patient's document
    return image


def _declare_deidentified(ds: Dataset, reference: Dataset) -> None:
    for keyword in DEID_DECLARATION:
        if keyword in reference:
            ds[keyword] = copy.deepcopy(reference[keyword])


def _file_meta(ds: Dataset) -> None:
    meta = ds.file_meta if hasattr(ds, "file_meta") and ds.file_meta else FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(str(ds.SOPClassUID))
    meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = meta.get("ImplementationClassUID") or PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta


def encode(ds: Dataset) -> bytes:
    """Part 10 bytes of one export object."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def sop_summary(objects: Sequence[Dataset]) -> list[dict[str, str]]:
    """Per object: its SOP Instance UID, class and a word for what it is, for the outbox page."""
    def what(ds: Dataset) -> str:
        sop_class = str(ds.SOPClassUID)
        if manifest.is_manifest(ds):
            return "manifest"
        if atfi.is_teaching_file_info(ds):
            return "teaching file report"
        if sop_class == str(GrayscaleSoftcopyPresentationStateStorage):
            return "saved display"
        if str(ds.get("Manufacturer", "")) == MANUFACTURER and ds.get("Modality") == "OT":
            return str(ds.get("SeriesDescription", "attachment"))
        return f"{ds.get('Modality', '')} image".strip()

    return [{"sop_instance_uid": str(ds.SOPInstanceUID), "sop_class_uid": str(ds.SOPClassUID), "what": what(ds)}
            for ds in objects]
