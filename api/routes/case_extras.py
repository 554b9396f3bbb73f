"""Likes, attachments and the audit trail of a case."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote
from typing import Any

from fastapi import APIRouter, Request, Response, UploadFile
from pydantic import BaseModel

from archive import case_extras
from archive.errors import InvalidInput

from ..deps import CasebankDep, CredentialsDep

router = APIRouter(tags=["cases"])


class LikesOut(BaseModel):
    count: int
    liked: bool


class AttachmentOut(BaseModel):
    id: int
    filename: str
    media_type: str
    size_bytes: int
    url: str


class HistoryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


def _attachment_out(a) -> AttachmentOut:  # type: ignore[no-untyped-def]
    return AttachmentOut(id=a.id, filename=a.filename, media_type=a.media_type, size_bytes=a.size_bytes,
                         url=f"/api/attachments/{a.id}")


@router.get("/api/cases/{case_id}/likes", response_model=LikesOut)
def get_likes(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> LikesOut:
    with cb.database.session() as session:
        found = case_extras.likes(session, credentials.user(session), case_id)
    return LikesOut(count=found.count, liked=found.liked)


@router.put("/api/cases/{case_id}/like", response_model=LikesOut)
@router.delete("/api/cases/{case_id}/like", response_model=LikesOut)
def like(case_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> LikesOut:
    """PUT likes the case, DELETE takes the like back; either answers the new count."""
    with cb.database.session() as session:
        found = case_extras.set_like(session, credentials.user(session), case_id, request.method == "PUT")
    return LikesOut(count=found.count, liked=found.liked)


@router.post("/api/cases/{case_id}/attachments", response_model=AttachmentOut, status_code=201)
async def upload(case_id: int, file: UploadFile, cb: CasebankDep, credentials: CredentialsDep) -> AttachmentOut:
    """A JPEG or PNG (histology, say) or a PDF (literature), at most 50 MB; needs the edit right."""
    data = await file.read(case_extras.MAX_ATTACHMENT_BYTES + 1)
    if not file.filename:
        raise InvalidInput("the upload has no file name")
    with cb.database.session() as session:
        attachment = case_extras.add_attachment(session, cb.blobs, credentials.user(session), case_id,
                                                file.filename, file.content_type or "", data)
        return _attachment_out(attachment)


@router.get("/api/cases/{case_id}/attachments", response_model=list[AttachmentOut])
def attachments(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> list[AttachmentOut]:
    with cb.database.session() as session:
        return [_attachment_out(a) for a in case_extras.list_attachments(session, credentials.user(session), case_id)]


@router.get("/api/attachments/{attachment_id}", response_class=Response)
def download(attachment_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        attachment = case_extras.get_attachment(session, credentials.user(session), attachment_id)
        sha256, media_type, filename = attachment.blob_sha256, attachment.media_type, attachment.filename
    return Response(cb.blobs.read(sha256), media_type=media_type, headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename)}", "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=3600"})


@router.delete("/api/attachments/{attachment_id}", status_code=204)
def remove(attachment_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        case_extras.remove_attachment(session, credentials.user(session), attachment_id)
    return Response(status_code=204)


@router.get("/api/cases/{case_id}/history", response_model=list[HistoryOut])
def case_history(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> list[HistoryOut]:
    """The case's audit trail, newest first (editors only)."""
    with cb.database.session() as session:
        entries = case_extras.history(session, credentials.user(session), case_id)
    return [HistoryOut(at=e.at, actor=e.actor, action=e.action, detail=e.detail) for e in entries]
