"""The quarantine's admin pages: list held objects, inspect one (reasons, header, preview), release
or delete it. Non-admins get the same 404 as for a missing entry; every action is audited by
:mod:`archive.quarantine`."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID
from starlette.concurrency import run_in_threadpool

from archive import quarantine
from archive.errors import InvalidInput, NotAuthenticated
from archive.models import QuarantinedObject, User
from ingest.intake import delete_from_quarantine, release_from_quarantine

from ..deps import CasebankDep, CredentialsDep
from ..rendering import render_png
from .pages import _to_login, templates

router = APIRouter(include_in_schema=False)

PREVIEW_SIZE = 512
VALUE_CHARS = 200
_TAG = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)")
_BLOCK = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{2})xx\)")


def sop_class_name(uid: str) -> str:
    """The SOP Class in plain words (pydicom's UID name), else the UID itself."""
    name = UID(uid).name
    return name if name and name != uid else uid


def sender_of(entry: QuarantinedObject, senders: dict[int, User]) -> str:
    user = senders.get(entry.sender_user_id) if entry.sender_user_id else None
    ae = f"AE {entry.calling_ae}" if entry.calling_ae else ""
    who = f"user {user.username}" if user else ""
    return " · ".join(part for part in (ae, who) if part) or "unknown"


@dataclass(frozen=True)
class HeaderRow:
    depth: int
    tag: str
    keyword: str
    vr: str
    value: str
    flagged: bool


def header_rows(ds: Dataset, reasons: list[str]) -> list[HeaderRow]:
    """The header as rows, nested items indented, rows the reasons name flagged."""
    tags = {f"({g},{e})" for g, e in _TAG.findall("\n".join(reasons))}
    blocks = {(int(g, 16), int(b, 16)) for g, b in _BLOCK.findall("\n".join(reasons))}
    rows: list[HeaderRow] = []

    def walk(item: Dataset, depth: int) -> None:
        for elem in item:
            tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
            in_block = (elem.tag.group, elem.tag.element >> 8) in blocks or (elem.tag.group, elem.tag.element) in blocks
            flagged = tag in tags or (elem.tag.is_private and in_block)
            if elem.VR == "SQ":
                rows.append(HeaderRow(depth, tag, elem.keyword, "SQ", f"{len(elem.value)} item(s)", flagged))
                for index, child in enumerate(elem.value):
                    rows.append(HeaderRow(depth + 1, "", f"item {index}", "", "", False))
                    walk(child, depth + 2)
                continue
            rows.append(HeaderRow(depth, tag, elem.keyword, str(elem.VR), _shown(elem.value), flagged))

    walk(ds, 0)
    return rows


def _shown(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    text = str(value)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + "…"


def _admin_page(request: Request, credentials: CredentialsDep) -> Response | None:
    """A login redirect when nobody is logged in; None to go on (admin checks are the domain's)."""
    return _to_login(request) if not credentials.present else None


@router.get("/admin/quarantine", response_class=HTMLResponse)
def quarantine_page(request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if (redirect := _admin_page(request, credentials)) is not None:
        return redirect
    try:
        with cb.database.session() as session:
            user = credentials.user(session)
            held = quarantine.list_held(session, user)
            senders = {e.sender_user_id: session.get(User, e.sender_user_id) for e in held if e.sender_user_id}
            rows = [{"entry": e, "sender": sender_of(e, senders), "sop_class": sop_class_name(e.sop_class_uid)} for e in held]
            return templates.TemplateResponse(request, "quarantine.html", {"user": user, "rows": rows})
    except NotAuthenticated:
        return _to_login(request)


@router.get("/admin/quarantine/{entry_id}", response_class=HTMLResponse)
def quarantine_entry_page(entry_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if (redirect := _admin_page(request, credentials)) is not None:
        return redirect
    with cb.database.session() as session:
        user = credentials.user(session)
        entry = quarantine.get(session, user, entry_id)  # 404 for non-admins; audited
        senders = {entry.sender_user_id: session.get(User, entry.sender_user_id)} if entry.sender_user_id else {}
        context = {
            "user": user, "entry": entry, "sender": sender_of(entry, senders),
            "sop_class": sop_class_name(entry.sop_class_uid), "reasons": list(entry.reasons),
        }
        sha256 = entry.blob_sha256
    with cb.blobs.open(sha256) as f:
        ds = dcmread(f, stop_before_pixels=True)
    context["rows"] = header_rows(ds, context["reasons"])
    # stop_before_pixels drops Pixel Data but keeps the image attributes that describe it
    context["has_pixels"] = "Rows" in ds and "Columns" in ds
    return templates.TemplateResponse(request, "quarantine_entry.html", context)


@router.get("/admin/quarantine/{entry_id}/preview.png")
def quarantine_preview(entry_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    """The first frame; only for admins (a held image may show a name burnt into its pixels)."""
    with cb.database.session() as session:
        entry = quarantine.get(session, credentials.user(session), entry_id)  # 404 for non-admins; audited
        sha256 = entry.blob_sha256
    ds = dcmread(io.BytesIO(cb.blobs.read(sha256)))
    try:
        png = render_png(ds, 1, PREVIEW_SIZE)
    except InvalidInput:
        return Response(status_code=404)
    # never cached: a shared cache or the browser's disk must not keep a possibly identifying image
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.post("/admin/quarantine/{entry_id}/release")
async def quarantine_release(entry_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if (redirect := _admin_page(request, credentials)) is not None:
        return redirect
    admin_id = _user_id(cb, credentials)
    await run_in_threadpool(release_from_quarantine, cb.intake, admin_id, entry_id)
    return RedirectResponse("/admin/quarantine", status_code=303)


@router.post("/admin/quarantine/{entry_id}/delete")
async def quarantine_delete(entry_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if (redirect := _admin_page(request, credentials)) is not None:
        return redirect
    admin_id = _user_id(cb, credentials)
    await run_in_threadpool(delete_from_quarantine, cb.intake, admin_id, entry_id)
    return RedirectResponse("/admin/quarantine", status_code=303)


def _user_id(cb: CasebankDep, credentials: CredentialsDep) -> int:
    with cb.database.session() as session:
        return credentials.user(session).id
