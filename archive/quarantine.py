"""Objects that may still identify a patient: acknowledged, held, and seen by admins only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .blobs import StoredBlob
from .errors import InvalidInput, NotFound, NotPermitted
from .models import QuarantinedObject, QuarantineState, User, utcnow


def hold(
    session: Session, *, sop_instance_uid: str, sop_class_uid: str, blob: StoredBlob, reasons: list[str],
    calling_ae: str = "", called_ae: str = "", sender_label: str = "",
) -> QuarantinedObject:
    entry = QuarantinedObject(
        sop_instance_uid=sop_instance_uid, sop_class_uid=sop_class_uid, blob_sha256=blob.sha256,
        size_bytes=blob.size, reasons=reasons, calling_ae=calling_ae, called_ae=called_ae,
    )
    session.add(entry)
    session.flush()
    audit.record(session, sender_label or f"ae:{calling_ae}", "quarantine.held", "quarantine", entry.id,
                 sop_instance_uid=sop_instance_uid, reasons=reasons)
    return entry


def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise NotPermitted(f"{user.username} may not see the quarantine; only admins may")


def list_held(session: Session, admin: User) -> list[QuarantinedObject]:
    _require_admin(admin)
    return list(session.scalars(
        select(QuarantinedObject).where(QuarantinedObject.state == QuarantineState.HELD)
        .order_by(QuarantinedObject.id)
    ))


def get(session: Session, admin: User, entry_id: int) -> QuarantinedObject:
    _require_admin(admin)
    entry = session.get(QuarantinedObject, entry_id)
    if entry is None:
        raise NotFound(f"quarantine entry {entry_id} does not exist")
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
