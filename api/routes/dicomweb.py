"""DICOMweb under /dicomweb. STOW-RS feeds the same intake as the DICOM receiver."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from archive.blobs import temp_prefix
from archive.errors import InvalidInput
from archive.filing import Sender
from ingest.intake import Outcome
from ingest.stow import (
    BadStowRequest,
    PartSpooler,
    SpooledPart,
    StowTooLarge,
    boundary_of,
    store_report,
    too_large_outcome,
)

from ..deps import CasebankDep, CredentialsDep
from ..runtime import Casebank
from ..settings import Settings

router = APIRouter(tags=["dicomweb"])
DICOM_JSON = "application/dicom+json"
FEED_BYTES = 1 << 20  # body chunks are gathered to this size before a thread writes them to disk
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def public_base(request: Request, settings: Settings) -> str:
    """The archive's own URL for links it hands out (RetrieveURL, BulkDataURI).

    Never the request's Host header, which any client can set: CASEBANK_BASE_URL when configured,
    else the configured CASEBANK_HTTP host (or, when that is a wildcard, the local address the
    connection arrived on) with the port the server listens on."""
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host, port = settings.http_host_port()
    server = request.scope.get("server")
    if server:  # the listening socket, not a header: the real port behind tests' random ports
        port = server[1] or port
        host = server[0] if host in WILDCARD_HOSTS else host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{request.url.scheme}://{host}:{port}"


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
    except BadStowRequest as exc:
        raise InvalidInput(str(exc)) from exc
    _refuse_declared_size(request, cb.settings.max_stow_bytes)
    spooler = PartSpooler(boundary, cb.blobs.tmp_dir, max_part_bytes=cb.settings.max_object_bytes,
                          max_total_bytes=cb.settings.max_stow_bytes, prefix=f"{temp_prefix()}stow-")
    try:
        parts = await _spool(request, spooler)
        outcomes = [await run_in_threadpool(_accept_part, cb, part, user_id, study_instance_uid) for part in parts]
    finally:
        await run_in_threadpool(spooler.discard)
    base = public_base(request, cb.settings) + "/dicomweb/studies"
    http_status, body = store_report(outcomes, f"{base}/{study_instance_uid}" if study_instance_uid else base)
    return JSONResponse(body, status_code=http_status, media_type=DICOM_JSON)


def _refuse_declared_size(request: Request, limit: int) -> None:
    """A body declared too large is refused before a byte of it is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, str(StowTooLarge(limit)))


async def _spool(request: Request, spooler: PartSpooler) -> list[SpooledPart]:
    """Stream the body through the splitter (chunked bodies have no Content-Length to trust)."""
    pending = bytearray()
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= FEED_BYTES:
                await run_in_threadpool(spooler.feed, bytes(pending))
                pending.clear()
        await run_in_threadpool(spooler.feed, bytes(pending))
        return spooler.finish()
    except StowTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    except BadStowRequest as exc:
        raise InvalidInput(str(exc)) from exc


def _accept_part(cb: Casebank, part: SpooledPart, user_id: int, required_study: str | None) -> Outcome:
    if part.too_large:
        return too_large_outcome(part, cb.settings.max_object_bytes)
    try:
        encoded = part.read()
    finally:
        part.discard()  # one object in memory at a time, and its temp file gone as soon as read
    return cb.intake.accept(encoded, Sender(user_id=user_id), required_study=required_study)
