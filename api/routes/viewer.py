"""What the browser viewer reads and saves: the stored DICOM bytes of an instance, a case's image
series in order with their saved display, and an editor's "Save as default"."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from archive import cases, display
from archive.folders import rights_on

from ..deps import CasebankDep, CredentialsDep

router = APIRouter(tags=["viewer"])


class CropIO(BaseModel):
    """The displayed region in image pixels: top-left corner (column x, row y), width and height."""

    x: float
    y: float
    width: float = Field(gt=0)
    height: float = Field(gt=0)


class DisplayIO(BaseModel):
    window_center: float | None = None
    window_width: float | None = Field(None, ge=1)
    crop: CropIO | None = None

    @classmethod
    def of(cls, saved: display.Display) -> DisplayIO:
        crop = CropIO(**vars(saved.crop)) if saved.crop else None
        return cls(window_center=saved.window_center, window_width=saved.window_width, crop=crop)


class DisplayIn(BaseModel):
    window_center: float
    window_width: float = Field(ge=1)
    crop: CropIO | None = None


class ViewerSeriesOut(BaseModel):
    id: int
    series_number: int | None
    modality: str
    body_part: str
    description: str
    instance_ids: list[int] = Field(description="in Instance Number order")
    wado_uris: list[str] = Field(description="the same instances as DICOMweb WADO-URI links (application/dicom)")
    display: DisplayIO


class ViewerOut(BaseModel):
    case_id: int
    can_edit: bool = Field(description="whether this user may save a series' default display")
    series: list[ViewerSeriesOut]


def wado_uri(study_uid: str, series_uid: str, sop_uid: str) -> str:
    query = urlencode({"requestType": "WADO", "studyUID": study_uid, "seriesUID": series_uid,
                       "objectUID": sop_uid, "contentType": "application/dicom"})
    return f"/dicomweb/wado?{query}"


@router.get("/api/instances/{instance_id}/dicom", response_class=FileResponse)
def instance_dicom(instance_id: int, cb: CasebankDep, credentials: CredentialsDep) -> FileResponse:
    """The stored DICOM Part 10 bytes (what the viewer's wadouri loader reads); view right needed."""
    with cb.database.session() as session:
        sha256 = cases.get_instance(session, credentials.user(session), instance_id).blob_sha256
    return FileResponse(
        cb.blobs.path(sha256), media_type="application/dicom", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get("/api/cases/{case_id}/viewer", response_model=ViewerOut)
def case_viewer(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> ViewerOut:
    with cb.database.session() as session:
        user = credentials.user(session)
        case = cases.get_case(session, user, case_id)
        series = [
            ViewerSeriesOut(
                id=s.id, series_number=s.series_number, modality=s.modality, body_part=s.body_part,
                description=s.description, instance_ids=[i.id for i in s.instances],
                wado_uris=[wado_uri(study.study_instance_uid, s.series_instance_uid, i.sop_instance_uid)
                           for i in s.instances],
                display=DisplayIO.of(display.Display.of(s)),
            )
            for study in case.studies
            for s in display.image_series(study.series)
        ]
        return ViewerOut(case_id=case.id, can_edit=rights_on(session, user, case.folder).edit, series=series)


@router.put("/api/series/{series_id}/display", response_model=DisplayIO)
def save_display(series_id: int, body: DisplayIn, cb: CasebankDep, credentials: CredentialsDep) -> DisplayIO:
    """Save the window and crop everyone opens this series with; needs the edit right (else 403)."""
    crop = display.Crop(**body.crop.model_dump()) if body.crop else None
    with cb.database.session() as session:
        series = display.save_series_display(
            session, credentials.user(session), series_id, body.window_center, body.window_width, crop
        )
        return DisplayIO.of(display.Display.of(series))
