"""A folder's page: its cases and sub-folders, and for its editors the share dialog (users with
view / edit / send rights, senders restricted by GMC number), new sub-folders, and for admins the
storage limit beside the usage. Every action goes through the domain's rights checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from archive import cases, catalogue, folders, quota, users
from archive.errors import InvalidInput
from archive.models import FieldType, FolderKind, SenderKind

from ..deps import CasebankDep, CredentialsDep
from .pages import _to_login, templates

router = APIRouter(include_in_schema=False)
MB = 1024 * 1024


def _back(folder_id: int, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/folders/{folder_id}{anchor}", status_code=303)


@router.get("/folders/{folder_id}", response_class=HTMLResponse)
def folder_page(folder_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    with cb.database.session() as session:
        user = credentials.user(session)
        folder = folders.get_folder(session, user, folder_id)
        rights = folders.rights_on(session, user, folder)
        own = catalogue.own_fields(session, folder)
        context = {
            "user": user, "folder": folder, "path": folders.folder_path(session, folder), "rights": rights,
            "cases": cases.list_cases(session, user, folder.id),
            "children": [(f, folders.folder_path(session, f)) for f in folders.subfolders(session, user, folder)],
            "shares": folders.shares_of(session, user, folder) if rights.edit else [],
            "senders": folders.allowed_senders(session, folder) if rights.edit else [],
            "usage_mb": quota.folder_usage(session, folder.id) / MB,
            "limit_mb": folder.storage_limit_bytes / MB if folder.storage_limit_bytes else None,
            "kinds": [k for k in FolderKind if k not in (FolderKind.PERSONAL, FolderKind.INBOX)],
            "own_fields": own,
            "inherited": [f for f in catalogue.fields_of(session, folder) if f not in own],
            "field_types": list(FieldType), "max_fields": catalogue.MAX_FIELDS,
        }
        return templates.TemplateResponse(request, "folder.html", context)


@router.post("/folders/{folder_id}/shares")
def share(folder_id: int, cb: CasebankDep, credentials: CredentialsDep, username: Annotated[str, Form(max_length=64)],
          right: Annotated[str, Form()] = "view", send: Annotated[bool, Form()] = False) -> Response:
    """Give a user view or edit rights (edit includes view), and optionally the right to send."""
    if right not in ("view", "edit"):
        raise InvalidInput("right must be view or edit")
    with cb.database.session() as session:
        actor = credentials.user(session)
        folder = folders.get_folder(session, actor, folder_id)
        folders.require(session, actor, folder, "edit")  # before looking the name up: no probing user names
        folders.grant(session, actor, folder, users.get_user(session, username), view=True, edit=right == "edit", send=send)
    return _back(folder_id, "#share")


@router.post("/folders/{folder_id}/shares/{username}/revoke")
def unshare(folder_id: int, username: str, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        actor = credentials.user(session)
        folder = folders.get_folder(session, actor, folder_id)
        folders.require(session, actor, folder, "edit")  # before looking the name up: no probing user names
        folders.revoke(session, actor, folder, users.get_user(session, username))
    return _back(folder_id, "#share")


@router.post("/folders/{folder_id}/senders")
def senders(folder_id: int, cb: CasebankDep, credentials: CredentialsDep, gmc: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    """Only these GMC numbers may send cases here (one per line or comma separated; empty: anyone with send)."""
    numbers = [n for n in gmc.replace(",", "\n").split() if n]
    bad = [n for n in numbers if not (n.isdigit() and len(n) == 7)]
    if bad:
        raise InvalidInput(f"GMC numbers have 7 digits: {', '.join(bad)}")
    with cb.database.session() as session:
        actor = credentials.user(session)
        folder = folders.get_folder(session, actor, folder_id)
        calling_aes = folders.allowed_senders(session, folder, SenderKind.AE_TITLE)  # kept as they are
        folders.restrict_senders(session, actor, folder, gmc_numbers=numbers, calling_aes=calling_aes)
    return _back(folder_id, "#share")


@router.post("/folders/{folder_id}/subfolders")
def add_subfolder(folder_id: int, cb: CasebankDep, credentials: CredentialsDep, name: Annotated[str, Form(max_length=200)],
                  kind: Annotated[str, Form()] = "shared") -> Response:
    with cb.database.session() as session:
        actor = credentials.user(session)
        parent = folders.get_folder(session, actor, folder_id)
        try:
            folder_kind = FolderKind(kind)
        except ValueError as exc:
            raise InvalidInput(f"unknown folder kind {kind!r}") from exc
        child = folders.create_folder(session, actor, name, folder_kind, parent=parent)
        child_id = child.id
    return _back(child_id)


@router.post("/folders/{folder_id}/catalogue")
def define_catalogue(folder_id: int, cb: CasebankDep, credentials: CredentialsDep,
                     name: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI reads it, never mutates it)
                     label: Annotated[list[str], Form()] = [],  # noqa: B006
                     type: Annotated[list[str], Form()] = [],  # noqa: B006
                     choices: Annotated[list[str], Form()] = []) -> Response:  # noqa: B006
    """The folder's own catalogue fields, one form row each; rows without a name are dropped."""
    rows = zip(name, label + [""] * len(name), type + ["keyword"] * len(name), choices + [""] * len(name), strict=False)
    try:
        definitions = [
            catalogue.FieldDefinition(n.strip(), FieldType(t), l.strip(), tuple(c.split(",")) if c.strip() else ())
            for n, l, t, c in rows if n.strip()
        ]
    except ValueError as exc:
        raise InvalidInput(f"unknown field type: {exc}") from exc
    with cb.database.session() as session:
        actor = credentials.user(session)
        catalogue.define_fields(session, actor, folders.get_folder(session, actor, folder_id), definitions)
    return _back(folder_id, "#catalogue")


@router.post("/folders/{folder_id}/limit")
def storage_limit(folder_id: int, cb: CasebankDep, credentials: CredentialsDep,
                  limit_mb: Annotated[str, Form()] = "", hard: Annotated[bool, Form()] = False) -> Response:
    """Admins set or clear the storage limit; the owner is mailed once when it is exceeded."""
    try:
        limit = int(float(limit_mb) * MB) if limit_mb.strip() else None
    except ValueError as exc:
        raise InvalidInput(f"limit {limit_mb!r} is not a number of MB") from exc
    with cb.database.session() as session:
        actor = credentials.user(session)
        folder = folders.get_folder(session, actor, folder_id)
        quota.set_limit(session, actor, folder, limit, hard=hard)
    return _back(folder_id)
