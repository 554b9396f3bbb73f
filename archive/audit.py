"""The append-only audit log: every rule-bearing action writes one row; rows never change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from .models import AuditEvent, User


class AuditLogIsAppendOnly(RuntimeError):
    pass


def record(
    session: Session,
    actor: User | str,
    action: str,
    object_type: str,
    object_id: object,
    **detail: Any,
) -> AuditEvent:
    """Add an audit row in the caller's transaction, so it commits or rolls back with the action."""
    if isinstance(actor, User):
        actor_user_id, actor_label = actor.id, f"user:{actor.username}"
    else:
        actor_user_id, actor_label = None, actor
    entry = AuditEvent(
        actor_user_id=actor_user_id,
        actor=actor_label,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail,
    )
    session.add(entry)
    return entry


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, _context, _instances) -> None:  # type: ignore[no-untyped-def]
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise AuditLogIsAppendOnly(f"audit event {obj.id} cannot be changed or deleted")
