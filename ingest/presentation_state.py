"""A Grayscale Softcopy Presentation State received with a case: its window and displayed area
become the saved display of the series it references (archive.display), as if an editor had
saved them. Another archive forwarding a case (export.tce_builder) sends its saved displays so.

Only series of the case the presentation state was filed in are touched, so an object from one
sender never changes another's case. A presentation state arriving before its images finds no
series and changes nothing (a Casebank export sends the images first)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import GrayscaleSoftcopyPresentationStateStorage
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit
from archive.blobs import BlobStore
from archive.db import mark_case_changed
from archive.models import Instance, Series, Study


@dataclass(frozen=True)
class SavedDisplay:
    series_instance_uid: str
    image_uids: tuple[str, ...]
    window_center: float | None
    window_width: float | None
    area: tuple[int, int, int, int] | None  # 1-based (left, top, right, bottom), as in PS3.3 C.10.4


def is_presentation_state(ds: Dataset) -> bool:
    return str(ds.get("SOPClassUID", "")) == str(GrayscaleSoftcopyPresentationStateStorage)


def _first(value: object) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, MultiValue):
        value = value[0] if len(value) else None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def saved_displays(ds: Dataset) -> list[SavedDisplay]:
    """What a GSPS says per referenced series: the first VOI window and the displayed area."""
    voi = (ds.get("SoftcopyVOILUTSequence") or [None])[0]
    center = _first(voi.get("WindowCenter")) if voi is not None else None
    width = _first(voi.get("WindowWidth")) if voi is not None else None
    area = None
    selection = (ds.get("DisplayedAreaSelectionSequence") or [None])[0]
    if selection is not None and selection.get("DisplayedAreaTopLeftHandCorner") and \
            selection.get("DisplayedAreaBottomRightHandCorner"):
        (left, top), (right, bottom) = (selection.DisplayedAreaTopLeftHandCorner,
                                        selection.DisplayedAreaBottomRightHandCorner)
        area = (int(left), int(top), int(right), int(bottom))
    displays = []
    for series in ds.get("ReferencedSeriesSequence") or ():
        images = tuple(str(item.get("ReferencedSOPInstanceUID", ""))
                       for item in series.get("ReferencedImageSequence") or ())
        displays.append(SavedDisplay(str(series.get("SeriesInstanceUID", "")), images, center, width, area))
    return displays


def apply_saved_displays(session: Session, blobs: BlobStore, case_id: int, ds: Dataset, actor: str) -> int:
    """Save the GSPS's window (and its displayed area when it is not the whole image) on the
    referenced series of ``case_id``; returns how many series changed."""
    changed = 0
    for display in saved_displays(ds):
        if display.window_center is None or display.window_width is None or display.window_width < 1:
            continue
        series = session.scalar(
            select(Series).join(Study, Study.id == Series.study_id)
            .where(Study.case_id == case_id, Series.series_instance_uid == display.series_instance_uid)
        )
        if series is None:
            continue
        series.default_window_center = display.window_center
        series.default_window_width = display.window_width
        series.default_crop = _crop(session, blobs, series, display)
        changed += 1
        audit.record(session, actor, "series.display_saved", "series", series.id, case_id=case_id,
                     window_center=display.window_center, window_width=display.window_width,
                     crop=series.default_crop, source="presentation state")
    if changed:
        session.flush()
        mark_case_changed(session, case_id)
    return changed


def _crop(session: Session, blobs: BlobStore, series: Series, display: SavedDisplay) -> dict | None:  # type: ignore[type-arg]
    if display.area is None:
        return None
    left, top, right, bottom = display.area
    instance = session.scalar(select(Instance).where(
        Instance.series_id == series.id, Instance.sop_instance_uid.in_(display.image_uids or ("",))))
    if instance is not None and left == 1 and top == 1:
        header = dcmread(io.BytesIO(blobs.read(instance.blob_sha256)), stop_before_pixels=True)
        if (right, bottom) == (int(header.get("Columns", 0)), int(header.get("Rows", 0))):
            return None  # the whole image: nothing was cropped
    if right < left or bottom < top:
        return None
    return {"x": float(left - 1), "y": float(top - 1), "width": float(right - left + 1), "height": float(bottom - top + 1)}
