"""A teaching case exported for a talk: PowerPoint, a zip of JPEGs, a cine loop (MP4 or AVI).

Each needs the case's view right (else 404, as for a missing case), is audited as
``case.exported``, and carries no contributor, GMC number or DICOM header (see export/)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from archive import audit, cases
from archive.models import User
from export import case_render, jpeg, movie, presentation

from ..deps import CasebankDep, Credentials, CredentialsDep
from ..runtime import Casebank

router = APIRouter(tags=["cases"])

PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def _plan(cb: Casebank, credentials: Credentials, case_id: int) -> tuple[case_render.CasePlan, int]:
    with cb.database.session() as session:
        user = credentials.user(session)
        plan = case_render.plan_case(cases.get_case(session, user, case_id), cb.blobs)
        return plan, user.id


def _audited(cb: Casebank, user_id: int, case_id: int, **detail: object) -> None:
    with cb.database.session() as session:
        audit.record(session, session.get(User, user_id), "case.exported", "case", case_id, **detail)


def _download(data: bytes, media_type: str, filename: str) -> Response:
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    })


@router.get("/api/cases/{case_id}/export/pptx", response_class=Response)
def export_pptx(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    """The case as a PowerPoint deck: title, history, key images, findings, discussion; the
    answers in the speaker notes only."""
    plan, user_id = _plan(cb, credentials, case_id)
    data = presentation.build_presentation(plan, cb.blobs)
    _audited(cb, user_id, case_id, format="pptx")
    return _download(data, PPTX, f"case-{case_id}.pptx")


@router.get("/api/cases/{case_id}/export/jpeg", response_class=Response)
def export_jpeg(
    case_id: int, cb: CasebankDep, credentials: CredentialsDep,
    series: int | None = Query(None, description="one image series of the case: every image of it"),
) -> Response:
    """A zip of 8-bit JPEGs windowed and cropped as saved: the key images, or every image of one series."""
    plan, user_id = _plan(cb, credentials, case_id)
    data = jpeg.build_zip(plan, cb.blobs, series)
    _audited(cb, user_id, case_id, format="jpeg", series_id=series)
    name = f"case-{case_id}-jpeg.zip" if series is None else f"case-{case_id}-series-{plan.series_by_id(series).label}-jpeg.zip"
    return _download(data, "application/zip", name)


@router.get("/api/cases/{case_id}/export/mp4", response_class=Response)
def export_movie(
    case_id: int, cb: CasebankDep, credentials: CredentialsDep,
    series: int = Query(..., description="an image series of the case: a multi-frame image or a stack"),
    format: str = Query("mp4", description="mp4 (H.264) or avi (Motion JPEG)"),
) -> Response:
    """A cine loop of one series at its own frame rate (else 10 frames a second)."""
    plan, user_id = _plan(cb, credentials, case_id)
    made = movie.build_movie(plan, cb.blobs, series, format.lower())
    _audited(cb, user_id, case_id, format=made.extension, series_id=series, frames=made.frames)
    return _download(made.data, made.media_type,
                     f"case-{case_id}-series-{plan.series_by_id(series).label}.{made.extension}")
