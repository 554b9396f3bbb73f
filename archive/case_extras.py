"""What gathers around a case: likes, attachments (histology images, PDF literature) and the
case's audit trail for its editors. Rights as for the case itself: view to like and read,
edit to attach, remove and read the history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit
from .blobs import BlobStore
from .cases import get_case
from .db import mark_case_changed
from .errors import InvalidInput, NotFound
from .folders import require
from .models import Attachment, AuditEvent, Case, Like, User

MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
ATTACHMENT_TYPES = {  # media type -> how its content starts
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}


@dataclass(frozen=True)
class Likes:
    count: int
    liked: bool


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    detail: dict


def _likes(session: Session, user: User, case_id: int) -> Likes:
    count = session.scalar(select(func.count()).select_from(Like).where(Like.case_id == case_id)) or 0
    return Likes(count, session.get(Like, (case_id, user.id)) is not None)


def likes(session: Session, user: User, case_id: int) -> Likes:
    get_case(session, user, case_id)
    return _likes(session, user, case_id)


def set_like(session: Session, user: User, case_id: int, liked: bool | None) -> Likes:
    """Like (True), stop liking (False) or toggle (None) a case one may view; once per user.
    Likes feed the search sort."""
    get_case(session, user, case_id)
    existing = session.get(Like, (case_id, user.id))
    wanted = existing is None if liked is None else liked
    if wanted and existing is None:
        session.add(Like(case_id=case_id, user_id=user.id))
    elif not wanted and existing is not None:
        session.delete(existing)
    session.flush()
    mark_case_changed(session, case_id)
    return _likes(session, user, case_id)


def media_type_of(data: bytes, declared: str) -> str:
    """The declared type when the content agrees with it; JPEG, PNG and PDF only."""
    declared = declared.split(";")[0].strip().lower()
    for media_type, signatures in ATTACHMENT_TYPES.items():
        if any(data.startswith(s) for s in signatures) and (declared in ("", "application/octet-stream", media_type)):
            return media_type
    raise InvalidInput(f"attachments must be JPEG, PNG or PDF files; this one ({declared or 'no type'}) is not")


def add_attachment(session: Session, blobs: BlobStore, user: User, case_id: int, filename: str,
                   declared_type: str, data: bytes) -> Attachment:
    case = get_case(session, user, case_id)
    require(session, user, case.folder, "edit")
    if not data:
        raise InvalidInput(f"{filename}: the file is empty")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise InvalidInput(f"{filename}: attachments may be at most {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
    media_type = media_type_of(data, declared_type)
    stored = blobs.put_bytes(data)
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()[:255] or "attachment"
    attachment = Attachment(case_id=case_id, filename=name, media_type=media_type, size_bytes=len(data),
                            blob_sha256=stored.sha256, uploaded_by_id=user.id)
    session.add(attachment)
    session.flush()
    audit.record(session, user, "case.attachment_added", "case", case_id, attachment_id=attachment.id, filename=name)
    return attachment


def list_attachments(session: Session, user: User, case_id: int) -> list[Attachment]:
    get_case(session, user, case_id)
    return list(session.scalars(select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)))


def _attachment(session: Session, attachment_id: int) -> Attachment:
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(f"attachment {attachment_id} does not exist")
    return attachment


def get_attachment(session: Session, user: User, attachment_id: int) -> Attachment:
    attachment = _attachment(session, attachment_id)
    # an invisible attachment answers as a missing one, not as its (invisible) case
    case = session.get(Case, attachment.case_id)
    if case is None:
        raise NotFound(f"attachment {attachment_id} does not exist")
    require(session, user, case.folder, "view", subject=f"attachment {attachment_id}")
    return attachment


def remove_attachment(session: Session, user: User, attachment_id: int) -> int:
    """Remove an attachment (edit right); returns its case's id."""
    attachment = get_attachment(session, user, attachment_id)
    case = get_case(session, user, attachment.case_id)
    require(session, user, case.folder, "edit", subject=f"attachment {attachment_id}")
    session.delete(attachment)  # the blob stays: content-addressed, it may be shared
    audit.record(session, user, "case.attachment_removed", "case", case.id, attachment_id=attachment_id,
                 filename=attachment.filename)
    return case.id


def history(session: Session, user: User, case_id: int) -> list[HistoryEntry]:
    """Who did what to the case, newest first; for those who may edit it."""
    case = get_case(session, user, case_id)
    require(session, user, case.folder, "edit")
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "case", AuditEvent.object_id == str(case_id))
        .order_by(AuditEvent.id.desc())
    )
    return [HistoryEntry(e.at, e.actor.removeprefix("user:"), e.action, dict(e.detail or {})) for e in events]
