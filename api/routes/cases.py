from fastapi import APIRouter, Query, Response
from pydicom import dcmread

from archive import cases

from ..deps import CasebankDep, CredentialsDep
from ..rendering import render_png
from ..schemas import CaseOut, CaseUpdateIn, case_out

router = APIRouter(tags=["cases"])


@router.get("/api/cases/{case_id}", response_model=CaseOut)
def read_case(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> CaseOut:
    with cb.database.session() as session:
        return case_out(session, cases.get_case(session, credentials.user(session), case_id))


@router.patch("/api/cases/{case_id}", response_model=CaseOut)
def update_case(case_id: int, body: CaseUpdateIn, cb: CasebankDep, credentials: CredentialsDep) -> CaseOut:
    """Change the teaching text, keywords or codes; needs edit rights on the case's folder."""
    with cb.database.session() as session:
        case = cases.update_case(session, credentials.user(session), case_id, body.to_domain())
        return case_out(session, case)


@router.get("/api/instances/{instance_id}/rendered", response_class=Response)
def rendered_instance(
    instance_id: int,
    cb: CasebankDep,
    credentials: CredentialsDep,
    frame: int = Query(1, ge=1),
    size: int | None = Query(None, ge=16, le=4096, description="longest side in pixels"),
) -> Response:
    """One frame as PNG, windowed with the image's own VOI settings."""
    with cb.database.session() as session:
        instance = cases.get_instance(session, credentials.user(session), instance_id)
        sha256 = instance.blob_sha256
    with cb.blobs.open(sha256) as f:
        png = render_png(dcmread(f), frame, size)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
