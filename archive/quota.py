"""Storage used per folder, its limit, and the one notice to the owner when it is crossed."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit
from .errors import ArchiveError, InvalidInput, NotPermitted
from .folders import folder_path
from .mail import OutgoingMail, queue_mail
from .models import Case, Folder, Instance, Series, Study, User


class QuotaExceeded(ArchiveError):
    """A store into a folder with a hard limit would exceed it."""


def folder_usage(session: Session, folder_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Instance.size_bytes), 0))
        .join(Series, Instance.series_id == Series.id)
        .join(Study, Series.study_id == Study.id)
        .join(Case, Study.case_id == Case.id)
        .where(Case.folder_id == folder_id)
    )
    return int(total or 0)


def set_limit(session: Session, actor: User | str, folder: Folder, limit_bytes: int | None, *, hard: bool = False) -> None:
    """Set (or with None remove) a folder's storage limit; only admins (or the operator's CLI) may."""
    if isinstance(actor, User) and not actor.is_admin:
        raise NotPermitted(f"{actor.username} may not set storage limits; only admins may")
    if limit_bytes is not None and limit_bytes <= 0:
        raise InvalidInput("a storage limit must be a positive number of bytes")
    folder.storage_limit_bytes, folder.limit_is_hard, folder.limit_notice_sent = limit_bytes, hard, False
    audit.record(session, actor, "folder.limit_set", "folder", folder.id, limit=limit_bytes, hard=hard)


def refuse_if_hard_limit_exceeded(session: Session, folder: Folder, incoming_bytes: int) -> None:
    if folder.storage_limit_bytes is None or not folder.limit_is_hard:
        return
    if folder_usage(session, folder.id) + incoming_bytes > folder.storage_limit_bytes:
        raise QuotaExceeded(f"folder {folder_path(session, folder)} is full")


def check_limit(session: Session, folder: Folder) -> None:
    """Mail the owner once when usage crosses the limit; re-arm when usage falls back under it."""
    if folder.storage_limit_bytes is None:
        return
    used = folder_usage(session, folder.id)
    over = used > folder.storage_limit_bytes
    if over and not folder.limit_notice_sent:
        folder.limit_notice_sent = True
        path = folder_path(session, folder)
        audit.record(session, "archive", "folder.limit_exceeded", "folder", folder.id, used=used,
                     limit=folder.storage_limit_bytes)
        if folder.owner is not None:
            queue_mail(session, OutgoingMail(
                to=folder.owner.email,
                subject=f"Casebank: folder {path} is over its storage limit",
                body=(
                    f"Dear {folder.owner.display_name},\n\n"
                    f"The Casebank folder {path} now holds {used / 1e6:.1f} MB, more than its limit of "
                    f"{folder.storage_limit_bytes / 1e6:.1f} MB.\n\n"
                    "Please manage the folder (remove or move cases you no longer need) or ask your "
                    "administrator to buy more storage.\n"
                ),
            ))
    elif not over and folder.limit_notice_sent:
        folder.limit_notice_sent = False
