"""Who may add objects where: one rule for every path in (C-STORE, STOW-RS, quarantine release).

An incoming object may join an existing study, series or case only if its sender holds the send
right on that case's folder, or the case holds the sender's own earlier objects of that study; a
manifest may gather only its sender's own objects or objects of cases the sender may edit.
Anything else is filed apart, as a new case of the sender, never merged into someone else's.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .folders import rights_on
from .models import Case, Folder, SenderKind, SenderRestriction, Study, User
from .senders import SenderIdentity


def sender_restrictions(session: Session, folder: Folder) -> list[SenderRestriction]:
    """The list of allowed senders that holds for `folder`: its own, else its nearest ancestor's."""
    current: Folder | None = folder
    while current is not None:
        rows = list(session.scalars(select(SenderRestriction).where(SenderRestriction.folder_id == current.id)))
        if rows:
            return rows
        current = session.get(Folder, current.parent_id) if current.parent_id else None
    return []


def may_send(
    session: Session, folder: Folder, identity: SenderIdentity, calling_ae: str = "", author: User | None = None
) -> tuple[bool, str]:
    """Whether objects may be filed into `folder`, and why not.

    `author` is a report's author, passed only when the report came from a trusted sender. A folder
    with a list of allowed senders takes those listed (by GMC number, or by a registered calling AE
    connecting from its host) and nobody else; otherwise the send right decides.
    """
    people = [user for user in (author, identity.user) if user is not None]
    restrictions = sender_restrictions(session, folder)
    if restrictions:
        gmcs = {r.value for r in restrictions if r.kind is SenderKind.GMC}
        aes = {r.value for r in restrictions if r.kind is SenderKind.AE_TITLE}
        if any(user.gmc in gmcs for user in people) or (identity.ae_verified and calling_ae in aes):
            return True, ""
        return False, "the folder accepts only listed senders, and this sender is not one"
    if any(rights_on(session, user, folder).send for user in people):
        return True, ""
    who = people[0].username if people else "an unidentified sender"
    return False, f"{who} has no send right on it"


def may_join(session: Session, identity: SenderIdentity, study: Study, calling_ae: str = "") -> bool:
    """Whether an arriving object may join `study` (and so its case)."""
    if study.sender and study.sender == identity.principal:
        return True  # the sender's own earlier objects of this study
    return may_send(session, study.case.folder, identity, calling_ae)[0]


def user_of_principal(session: Session, principal: str) -> User | None:
    kind, _, ident = principal.partition(":")
    return session.get(User, int(ident)) if kind == "user" and ident.isdigit() else None


def may_gather(session: Session, principal: str, study: Study, case: Case) -> bool:
    """Whether a manifest sent by `principal` may gather `study` into its case `case`."""
    if study.case_id == case.id or (study.sender and study.sender == principal):
        return True
    user = user_of_principal(session, principal)
    return user is not None and rights_on(session, user, study.case.folder).edit
