"""DICOMweb under /dicomweb. STOW-RS feeds the same intake as the DICOM receiver."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from archive.errors import InvalidInput
from archive.filing import Sender
from ingest.stow import BadStowRequest, boundary_of, split_parts, store_report

from ..deps import CasebankDep, CredentialsDep

router = APIRouter(tags=["dicomweb"])
DICOM_JSON = "application/dicom+json"


@router.post("/dicomweb/studies", response_class=JSONResponse)
@router.post("/dicomweb/studies/{study_instance_uid}", response_class=JSONResponse)
async def store_instances(
    request: Request, cb: CasebankDep, credentials: CredentialsDep, study_instance_uid: str | None = None
) -> JSONResponse:
    """STOW-RS: store DICOM instances sent as multipart/related; type="application/dicom"."""
    with cb.database.session() as session:
        user_id = credentials.user(session).id
    try:
        boundary = boundary_of(request.headers.get("content-type", ""))
        parts = split_parts(await request.body(), boundary)
    except BadStowRequest as exc:
        raise InvalidInput(str(exc)) from exc
    sender = Sender(user_id=user_id)
    outcomes = [
        await run_in_threadpool(cb.intake.accept, part, sender, required_study=study_instance_uid)
        for part in parts
    ]
    base = str(request.base_url).rstrip("/") + "/dicomweb/studies"
    http_status, body = store_report(outcomes, f"{base}/{study_instance_uid}" if study_instance_uid else base)
    return JSONResponse(body, status_code=http_status, media_type=DICOM_JSON)
