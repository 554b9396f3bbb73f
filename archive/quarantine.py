"""Objects that may still identify a patient: acknowledged, held, and seen by admins only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .blobs import StoredBlob
from .errors import InvalidInput, NotFound
from .models import QuarantinedObject, QuarantineState, User, utcnow


def hold(
    session: Session, *, sop_instance_uid: str, sop_class_uid: str, blob: StoredBlob, reasons: list[str],
    calling_ae: str = "", called_ae: str = "", sender_label: str = "", sender_user_id: int | None = None,
) -> QuarantinedObject:
    """Keep an object the door check refused; `sender_user_id` (the STOW user, or the user bound
    to the calling AE) is told about it."""
    entry = QuarantinedObject(
        sop_instance_uid=sop_instance_uid, sop_class_uid=sop_class_uid, blob_sha256=blob.sha256,
        size_bytes=blob.size, reasons=reasons, calling_ae=calling_ae, called_ae=called_ae,
        sender_user_id=sender_user_id,
    )
    session.add(entry)
    session.flush()
    audit.record(session, sender_label or f"ae:{calling_ae}", "quarantine.held", "quarantine", entry.id,
                 sop_instance_uid=sop_instance_uid, reasons=reasons)
    return entry


def _require_admin(user: User, entry_id: int | None = None) -> None:
    # Not 403: a non-admin learns nothing, not even that the quarantine or an entry exists.
    if not user.is_admin:
        raise NotFound(_missing(entry_id))


def _missing(entry_id: int | None) -> str:
    return "not found" if entry_id is None else f"quarantine entry {entry_id} does not exist"


def list_held(session: Session, admin: User) -> list[QuarantinedObject]:
    _require_admin(admin)
    return list(session.scalars(
        select(QuarantinedObject).where(QuarantinedObject.state == QuarantineState.HELD)
        .order_by(QuarantinedObject.id)
    ))


def get(session: Session, admin: User, entry_id: int) -> QuarantinedObject:
    _require_admin(admin, entry_id)
    entry = session.get(QuarantinedObject, entry_id)
    if entry is None:
        raise NotFound(_missing(entry_id))
    audit.record(session, admin, "quarantine.inspected", "quarantine", entry.id)
    return entry


def decide(session: Session, admin: User, entry_id: int, state: QuarantineState) -> QuarantinedObject:
    """Mark a held object released or deleted; the caller files a released one."""
    entry = get(session, admin, entry_id)
    if entry.state is not QuarantineState.HELD:
        raise InvalidInput(f"quarantine entry {entry_id} was already {entry.state.value}")
    entry.state, entry.decided_by_id, entry.decided_at = state, admin.id, utcnow()
    audit.record(session, admin, f"quarantine.{state.value}", "quarantine", entry.id,
                 sop_instance_uid=entry.sop_instance_uid)
    return entry


def held_for_sender(session: Session, user: User) -> list[QuarantinedObject]:
    """Objects this user sent that are still held: the sender is told, so nothing vanishes silently.

    The sender sees when and why, never the header: only admins inspect.
    """
    return list(session.scalars(
        select(QuarantinedObject)
        .where(QuarantinedObject.sender_user_id == user.id, QuarantinedObject.state == QuarantineState.HELD)
        .order_by(QuarantinedObject.id)
    ))


NOTICE_REASONS = 3


def sender_notice(held: list[QuarantinedObject]) -> str:
    """'1 object held at the door: <reason>' (the first few distinct reasons); '' when none."""
    if not held:
        return ""
    reasons: list[str] = []
    for entry in held:
        for reason in entry.reasons:
            if reason not in reasons:
                reasons.append(reason)
    shown = "; ".join(reasons[:NOTICE_REASONS])
    more = f" (and {len(reasons) - NOTICE_REASONS} more)" if len(reasons) > NOTICE_REASONS else ""
    noun = "object" if len(held) == 1 else "objects"
    return f"{len(held)} {noun} held at the door: {shown}{more}"
