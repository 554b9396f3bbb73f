"""Folders, their tree and who may view, edit or send to them. Every path in checks rights here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .errors import InvalidInput, NotFound, NotPermitted
from .models import Folder, FolderGrant, FolderKind, ProjectMember, ProjectRole, SenderKind, SenderRestriction, User

UNCLAIMED_INBOX = "Unclaimed"


@dataclass(frozen=True)
class Rights:
    view: bool = False
    edit: bool = False
    send: bool = False

    def __or__(self, other: Rights) -> Rights:
        return Rights(self.view or other.view, self.edit or other.edit, self.send or other.send)


ALL_RIGHTS = Rights(view=True, edit=True, send=True)
NO_RIGHTS = Rights()

PROJECT_RIGHTS = {
    ProjectRole.PRINCIPAL_INVESTIGATOR: ALL_RIGHTS,
    ProjectRole.COORDINATOR: ALL_RIGHTS,
    ProjectRole.RESEARCHER: Rights(view=True),
    ProjectRole.VIEWER: Rights(view=True),
    ProjectRole.SITE_UPLOADER: Rights(send=True),
}
"""What each project role may do in the project's collection. Its hold is for PI and coordinators."""
HOLD_ROLES = frozenset({ProjectRole.PRINCIPAL_INVESTIGATOR, ProjectRole.COORDINATOR})


class _FolderTree:
    """One query's snapshot of folders and of one user's grants, for rights over the whole tree."""

    def __init__(self, session: Session, user: User) -> None:
        self.user = user
        self.folders = {f.id: f for f in session.scalars(select(Folder))}
        self.grants = {
            g.folder_id: Rights(g.can_view or g.can_edit, g.can_edit, g.can_send)
            for g in session.scalars(select(FolderGrant).where(FolderGrant.user_id == user.id))
        }
        self.roles = dict(session.execute(
            select(ProjectMember.project_id, ProjectMember.role).where(ProjectMember.user_id == user.id)
        ).all())

    def rights(self, folder_id: int) -> Rights:
        folder = self.folders.get(folder_id)
        if folder is not None and (folder.project_id is not None or folder.kind is FolderKind.HOLD):
            return self._project_rights(folder)
        if self.user.is_admin:
            return ALL_RIGHTS
        rights, current = NO_RIGHTS, self.folders.get(folder_id)
        while current is not None:  # rights on a folder hold on all of its sub-folders
            if current.owner_id == self.user.id:
                return ALL_RIGHTS
            if current.kind is FolderKind.PUBLIC:
                rights |= Rights(view=True)
            rights |= self.grants.get(current.id, NO_RIGHTS)
            current = self.folders.get(current.parent_id) if current.parent_id else None
        return rights

    def _project_rights(self, folder: Folder) -> Rights:
        """Research folders answer to project membership only: not to grants, ownership or admin."""
        if folder.project_id is None:  # the research hold of objects no project claims
            return ALL_RIGHTS if self.user.is_admin else NO_RIGHTS
        role = self.roles.get(folder.project_id)
        if role is None:
            return NO_RIGHTS
        if folder.kind is FolderKind.HOLD:
            return ALL_RIGHTS if role in HOLD_ROLES else NO_RIGHTS
        return PROJECT_RIGHTS[role]


def rights_on(session: Session, user: User, folder: Folder) -> Rights:
    return _FolderTree(session, user).rights(folder.id)


def require(session: Session, user: User, folder: Folder, right: str, *, subject: str | None = None) -> None:
    """Raise unless `user` holds `right` ("view", "edit" or "send") on `folder`.

    `subject` is what the caller was asked for ("case 5"; default "folder <id>"). Someone who may not
    even view the folder gets exactly the NotFound a missing `subject` gets, so IDs cannot be probed
    and folder paths or user names never leak; someone who may view it gets NotPermitted, naming only
    themselves and what they can already see."""
    rights = rights_on(session, user, folder)
    if not rights.view:
        raise NotFound(not_found(subject or f"folder {folder.id}"))
    if not getattr(rights, right):
        raise NotPermitted(f"{user.username} may not {right} {subject or _named(session, user, folder)}")


def _named(session: Session, user: User, folder: Folder) -> str:
    """A folder as a refusal names it: by path, unless the path starts with another user's name."""
    root: Folder = folder
    while root.parent_id is not None and (parent := session.get(Folder, root.parent_id)) is not None:
        root = parent
    if root.kind is FolderKind.PERSONAL and root.owner_id != user.id:
        return f"folder {folder.id}"
    return f"folder {folder_path(session, folder)}"


def not_found(subject: str) -> str:
    """The one message for what does not exist and for what the asker may not see."""
    return f"{subject} does not exist"


def visible_folder_ids(session: Session, user: User) -> set[int]:
    tree = _FolderTree(session, user)
    return {fid for fid in tree.folders if tree.rights(fid).view}


def folder_path(session: Session, folder: Folder) -> str:
    names, current = [], folder
    while current is not None:
        names.append(current.name)
        current = session.get(Folder, current.parent_id) if current.parent_id else None
    return "/" + "/".join(reversed(names))


def folder_by_path(session: Session, path: str) -> Folder | None:
    """The folder at "/A/B/C", or None."""
    current: Folder | None = None
    for name in [part for part in path.strip().split("/") if part]:
        parent_match = Folder.parent_id.is_(None) if current is None else Folder.parent_id == current.id
        current = session.scalar(select(Folder).where(parent_match, Folder.name == name))
        if current is None:
            return None
    return current


def get_folder(session: Session, user: User, folder_id: int) -> Folder:
    folder = session.get(Folder, folder_id)
    if folder is None:
        raise NotFound(not_found(f"folder {folder_id}"))
    require(session, user, folder, "view")  # invisible answers as missing
    return folder


def list_visible_folders(session: Session, user: User) -> list[tuple[Folder, Rights]]:
    tree = _FolderTree(session, user)
    rows = [(f, tree.rights(f.id)) for f in tree.folders.values()]
    return sorted(
        ((f, r) for f, r in rows if r.view), key=lambda fr: folder_path(session, fr[0]).lower()
    )


def create_folder(
    session: Session,
    actor: User,
    name: str,
    kind: FolderKind = FolderKind.SHARED,
    parent: Folder | None = None,
    storage_limit_bytes: int | None = None,
) -> Folder:
    name = name.strip()
    if not name or "/" in name:
        raise InvalidInput(f"folder name {name!r} must be non-empty and contain no '/'")
    if parent is not None:
        require(session, actor, parent, "edit")
    elif kind is not FolderKind.PERSONAL and not actor.is_admin:
        raise NotPermitted(f"{actor.username} may not create top-level folders; only admins may")
    if _sibling_exists(session, parent, name):
        raise InvalidInput(f"a folder named {name!r} already exists there")
    folder = Folder(
        name=name,
        kind=kind,
        owner_id=actor.id,
        parent_id=parent.id if parent else None,
        storage_limit_bytes=storage_limit_bytes,
        project_id=parent.project_id if parent else None,  # a project's sub-folder answers to its members
    )
    session.add(folder)
    session.flush()
    audit.record(session, actor, "folder.created", "folder", folder.id, path=folder_path(session, folder))
    return folder


def _sibling_exists(session: Session, parent: Folder | None, name: str) -> bool:
    parent_match = Folder.parent_id.is_(None) if parent is None else Folder.parent_id == parent.id
    return session.scalar(select(Folder.id).where(parent_match, Folder.name == name)) is not None


def personal_folder(session: Session, user: User) -> Folder:
    folder = session.scalar(
        select(Folder).where(Folder.owner_id == user.id, Folder.kind == FolderKind.PERSONAL)
    )
    if folder is None:
        raise NotFound(f"user {user.username} has no personal folder")
    return folder


def create_personal_folder(session: Session, user: User) -> Folder:
    folder = Folder(name=user.username, kind=FolderKind.PERSONAL, owner_id=user.id)
    session.add(folder)
    session.flush()
    return folder


def unclaimed_inbox(session: Session) -> Folder:
    """The admin-only folder for objects whose sender is bound to no user."""
    folder = session.scalar(select(Folder).where(Folder.kind == FolderKind.INBOX))
    if folder is None:
        folder = Folder(name=UNCLAIMED_INBOX, kind=FolderKind.INBOX, owner_id=None)
        session.add(folder)
        session.flush()
    return folder


def grant(
    session: Session,
    actor: User,
    folder: Folder,
    grantee: User,
    *,
    view: bool = True,
    edit: bool = False,
    send: bool = False,
) -> FolderGrant:
    """Give (or change) `grantee`'s rights on `folder`; only its editors, owner or admins may."""
    require(session, actor, folder, "edit")
    row = session.scalar(
        select(FolderGrant).where(FolderGrant.folder_id == folder.id, FolderGrant.user_id == grantee.id)
    )
    if row is None:
        row = FolderGrant(folder_id=folder.id, user_id=grantee.id)
        session.add(row)
    row.can_view, row.can_edit, row.can_send = view or edit, edit, send
    session.flush()
    audit.record(
        session, actor, "folder.granted", "folder", folder.id,
        grantee=grantee.username, view=row.can_view, edit=edit, send=send,
    )
    return row


def restrict_senders(
    session: Session, actor: User, folder: Folder, *, gmc_numbers: list[str], calling_aes: list[str]
) -> None:
    """Only the listed GMC numbers and calling AE titles may send to `folder`; empty lists lift it."""
    require(session, actor, folder, "edit")
    for row in session.scalars(select(SenderRestriction).where(SenderRestriction.folder_id == folder.id)):
        session.delete(row)
    session.flush()
    for kind, values in ((SenderKind.GMC, gmc_numbers), (SenderKind.AE_TITLE, calling_aes)):
        for value in dict.fromkeys(v.strip() for v in values if v.strip()):
            session.add(SenderRestriction(folder_id=folder.id, kind=kind, value=value))
    audit.record(session, actor, "folder.senders_restricted", "folder", folder.id,
                 gmc=list(gmc_numbers), ae=list(calling_aes))


@dataclass(frozen=True)
class Share:
    """One user's grant on a folder, as the share dialog lists it."""

    user_id: int
    username: str
    display_name: str
    rights: Rights


def shares_of(session: Session, actor: User, folder: Folder) -> list[Share]:
    """Who holds a grant on `folder` itself; only its editors may see the list."""
    require(session, actor, folder, "edit")
    rows = session.execute(
        select(FolderGrant, User).join(User, User.id == FolderGrant.user_id).where(FolderGrant.folder_id == folder.id)
    ).all()
    return sorted(
        (Share(u.id, u.username, u.display_name or u.username, Rights(g.can_view or g.can_edit, g.can_edit, g.can_send))
         for g, u in rows),
        key=lambda s: s.username,
    )


def revoke(session: Session, actor: User, folder: Folder, grantee: User) -> None:
    """Take away every right `grantee` was given on `folder` (rights inherited from above stay)."""
    require(session, actor, folder, "edit")
    row = session.scalar(
        select(FolderGrant).where(FolderGrant.folder_id == folder.id, FolderGrant.user_id == grantee.id)
    )
    if row is not None:
        session.delete(row)
        session.flush()
        audit.record(session, actor, "folder.revoked", "folder", folder.id, grantee=grantee.username)


def allowed_senders(session: Session, folder: Folder, kind: SenderKind = SenderKind.GMC) -> list[str]:
    """GMC numbers (or calling AE titles) allowed to send to `folder`; empty when anyone with the
    send right may."""
    return list(session.scalars(
        select(SenderRestriction.value)
        .where(SenderRestriction.folder_id == folder.id, SenderRestriction.kind == kind)
        .order_by(SenderRestriction.value)
    ))


def subfolders(session: Session, user: User, folder: Folder) -> list[Folder]:
    """The sub-folders of `folder` that `user` may view."""
    tree = _FolderTree(session, user)
    return sorted((f for f in tree.folders.values() if f.parent_id == folder.id and tree.rights(f.id).view),
                  key=lambda f: f.name.lower())
