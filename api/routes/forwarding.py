"""Forwarding a case to another archive (archive.forwarding): the REST API, the case page's
"Forward to..." form and the admins' outbox page.

``POST /api/cases/{id}/forward`` needs the edit right on the case (a case one may not see answers
404, as missing); ``GET /api/destinations`` names the destinations to anyone logged in (their
addresses to admins only); ``GET /api/outbox`` and ``/admin/outbox`` are for admins (404 for others).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from archive import forwarding
from archive.errors import NotFound
from archive.models import User

from ..deps import CasebankDep, Credentials, CredentialsDep
from ..runtime import Casebank
from .pages import _to_login, templates

router = APIRouter(tags=["forwarding"])


class ForwardIn(BaseModel):
    destination: str
    strip_sender: bool = False


def _forward(cb: Casebank, credentials: Credentials, case_id: int, destination: str, strip_sender: bool) -> list[dict[str, str]]:
    with cb.database.session() as session:
        user = credentials.user(session)
        return forwarding.forward_case(session, cb.blobs, user, case_id, destination, strip_sender,
                                       forwarder=cb.forwarder)


@router.post("/api/cases/{case_id}/forward", status_code=202)
async def forward_case(case_id: int, body: ForwardIn, cb: CasebankDep, credentials: CredentialsDep) -> dict:  # type: ignore[type-arg]
    """Queue the case, rebuilt as a TCE submission (images, saved displays as presentation states,
    attachments, a new ATFI report and KOS manifest), for the destination's outbox. 202: queued;
    422 with the reasons when an object fails the de-identification check."""
    queued = await run_in_threadpool(_forward, cb, credentials, case_id, body.destination, body.strip_sender)
    return {"case_id": case_id, "destination": body.destination, "strip_sender": body.strip_sender,
            "queued": queued}


def _admin(session, credentials: Credentials) -> User:  # type: ignore[no-untyped-def]
    user = credentials.user(session)
    if not user.is_admin:
        raise NotFound("not found")
    return user


@router.get("/api/destinations")
def destinations(cb: CasebankDep, credentials: CredentialsDep) -> list[dict]:  # type: ignore[type-arg]
    with cb.database.session() as session:
        user = credentials.user(session)
        rows = forwarding.list_destinations(session)
        if not user.is_admin:
            return [{"name": d.name} for d in rows]
        return [{"name": d.name, "kind": d.kind, "target": forwarding.describe(d), "tls": d.tls,
                 "token_set": bool(d.bearer_token)} for d in rows]


def _outbox_states(cb: Casebank, credentials: Credentials) -> tuple[User, list[forwarding.DestinationState]]:
    with cb.database.session() as session:
        user = _admin(session, credentials)
        rows = forwarding.list_destinations(session)
        return user, [cb.forwarder.state(d) for d in rows]


@router.get("/api/outbox")
def outbox(cb: CasebankDep, credentials: CredentialsDep) -> list[dict]:  # type: ignore[type-arg]
    """Per destination: counts, the last error, and per forward each object waiting, sent or refused."""
    _, states = _outbox_states(cb, credentials)
    return [asdict(state) for state in states]


@router.get("/admin/outbox", response_class=HTMLResponse, include_in_schema=False)
def outbox_page(request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    user, states = _outbox_states(cb, credentials)
    return templates.TemplateResponse(request, "outbox.html", {"user": user, "states": states})


@router.post("/cases/{case_id}/forward", include_in_schema=False)
def forward_form(case_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep,
                 destination: Annotated[str, Form()], strip_sender: Annotated[str, Form()] = "") -> Response:
    if not credentials.present:
        return _to_login(request)
    _forward(cb, credentials, case_id, destination, strip_sender in ("on", "1", "true", "yes"))
    return RedirectResponse(f"/cases/{case_id}?forwarded={destination}#forward", status_code=303)


def forward_destinations(request: Request) -> list[str]:
    """Destination names for the case page's form (a template global: the page's own context is
    built elsewhere)."""
    cb: Casebank = request.app.state.casebank
    with cb.database.session() as session:
        return [d.name for d in forwarding.list_destinations(session)]


templates.env.globals["forward_destinations"] = forward_destinations
