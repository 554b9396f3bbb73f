"""Public links of cases: the editors' REST and form actions, and the pages anyone with a link opens.

``/p/{token}`` and what it loads need no login (they never ask for credentials, so no page of
the archive redirects them to /login): the case's teaching text and the images that passed the
door check when the link was made, rendered to PNG or JPEG by :mod:`api.rendering` so no DICOM
header leaves the archive. Nothing on them names the author, a GMC number, a folder or a sender.
An unknown, revoked or expired link is one plain 404 page.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image, ImageOps
from pydantic import BaseModel, Field
from pydicom import dcmread
from sqlalchemy.orm import Session

from archive import public_links
from archive.display import Display, image_series
from archive.errors import ArchiveError, InvalidInput, NotFound
from archive.models import Case, Instance, PublicLink, utcnow
from terminology.fhir import SYSTEM_TITLES
from terminology.systems import canonical_system

from ..deps import CasebankDep, CredentialsDep
from ..rendering import Window, render
from .dicomweb import public_base
from .pages import _to_login, templates

router = APIRouter(tags=["public links"])

THUMBNAIL_SIZE = (1200, 630)  # what Open Graph and summary_large_image cards show best
IMAGE_SIZE = 1024  # the longest side of a page image unless asked otherwise
FRAMES_READ_UP_TO = 16  # instances per series whose frames are counted (cine loops, enhanced CT)
PUBLIC_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Cache-Control": "no-store"}
IMAGE_HEADERS = {"X-Robots-Tag": "noindex", "Cache-Control": "private, max-age=300"}
SEXES = {"F": "female", "M": "male"}  # "O" (other) is also what many anonymisers write: not shown
AGE_UNITS = {"D": "day", "W": "week", "M": "month", "Y": "year"}


# --- REST for editors ---------------------------------------------------------------------------


class PublishIn(BaseModel):
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="none: until revoked")


class LeftOutOut(BaseModel):
    instance_id: int
    series: str
    reasons: list[str]


class PublishedOut(BaseModel):
    id: int
    url: str = Field(description="the public page; shown once, only its hash is kept")
    token: str
    expires_at: datetime | None
    images: int = Field(description="images on the page")
    left_out: list[LeftOutOut] = Field(description="images the de-identification check refused")


class PublicLinkOut(BaseModel):
    id: int
    state: str = Field(description="live, revoked or expired")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    views: int
    images: int


class EmailIn(BaseModel):
    to: str = Field(max_length=254)
    token: str = Field(max_length=200, description="the link's token, as publishing gave it (only its hash is kept)")


def _link_out(link: PublicLink) -> PublicLinkOut:
    return PublicLinkOut(id=link.id, state=public_links.state_of(link), created_at=link.created_at,
                         expires_at=link.expires_at, revoked_at=link.revoked_at, views=link.views or 0,
                         images=len(link.instance_ids or []))


def _expiry(days: int | None) -> datetime | None:
    return utcnow() + timedelta(days=days) if days else None


def _base(request: Request, cb: CasebankDep) -> str:
    """CASEBANK_BASE_URL when set, else the address this request reached (never its Host header)."""
    return public_base(request, cb.settings)


@router.post("/api/cases/{case_id}/public-links", response_model=PublishedOut, status_code=201)
def publish(case_id: int, body: PublishIn, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> PublishedOut:
    """Publish the case as an anonymised public page (edit right; never a research case). Each
    image is checked again; the refused ones are left out and listed, and with none left, 422."""
    with cb.database.session() as session:
        made = public_links.publish(session, cb.blobs, credentials.user(session), case_id, _expiry(body.expires_in_days))
        return PublishedOut(
            id=made.link.id, url=public_links.url_of(_base(request, cb), made.token), token=made.token,
            expires_at=made.link.expires_at, images=len(made.link.instance_ids),
            left_out=[LeftOutOut(instance_id=o.instance_id, series=o.series, reasons=o.reasons) for o in made.left_out],
        )


@router.get("/api/cases/{case_id}/public-links", response_model=list[PublicLinkOut])
def list_links(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> list[PublicLinkOut]:
    """The case's public links, newest first, with their view counts (edit right)."""
    with cb.database.session() as session:
        return [_link_out(link) for link in public_links.list_links(session, credentials.user(session), case_id)]


@router.delete("/api/public-links/{link_id}", status_code=204)
def revoke(link_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        public_links.revoke(session, credentials.user(session), link_id)
    return Response(status_code=204)


@router.post("/api/public-links/{link_id}/email", status_code=204)
def email(link_id: int, body: EmailIn, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    """Mail the link to ``to`` (sent when the request's transaction commits)."""
    with cb.database.session() as session:
        public_links.email_link(session, credentials.user(session), link_id, body.to, _base(request, cb), body.token)
    return Response(status_code=204)


# --- Form actions of the case page --------------------------------------------------------------


def _form_days(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise InvalidInput("the expiry is a whole number of days from 1 to 3650, or empty for none")
    return int(text)


def _created_page(request: Request, user, case: Case, link: PublicLink, token: str, base: str,  # type: ignore[no-untyped-def]
                  left_out: list[public_links.LeftOut], mailed_to: str = "") -> Response:
    return templates.TemplateResponse(request, "public_link_created.html", {
        "user": user, "case": case, "link": link, "token": token, "url": public_links.url_of(base, token),
        "left_out": left_out, "mailed_to": mailed_to, "reasons_shown": public_links.REASONS_SHOWN,
    }, headers={"Cache-Control": "no-store"})


@router.post("/cases/{case_id}/public-links", response_class=HTMLResponse, include_in_schema=False)
def publish_form(
    case_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    expires_in_days: Annotated[str, Form(max_length=10)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    """The case page's "Publish": the new link is shown once, mailed too when an address is given."""
    if not credentials.present:
        return _to_login(request)
    base = _base(request, cb)
    with cb.database.session() as session:
        user = credentials.user(session)
        made = public_links.publish(session, cb.blobs, user, case_id, _expiry(_form_days(expires_in_days)))
        if email.strip():
            public_links.email_link(session, user, made.link.id, email, base, made.token)
        return _created_page(request, user, made.link.case, made.link, made.token, base, made.left_out, email.strip())


@router.post("/public-links/{link_id}/email", response_class=HTMLResponse, include_in_schema=False)
def email_form(
    link_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    to: Annotated[str, Form(max_length=254)], token: Annotated[str, Form(max_length=200)],
) -> Response:
    if not credentials.present:
        return _to_login(request)
    base = _base(request, cb)
    with cb.database.session() as session:
        user = credentials.user(session)
        public_links.email_link(session, user, link_id, to, base, token)
        link = session.get_one(PublicLink, link_id)
        return _created_page(request, user, link.case, link, token, base, [], to.strip())


@router.post("/public-links/{link_id}/revoke", include_in_schema=False)
def revoke_form(link_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    with cb.database.session() as session:
        case_id = public_links.revoke(session, credentials.user(session), link_id).case_id
    return RedirectResponse(f"/cases/{case_id}#share-public", status_code=303)


# --- The public page and its images (no login) --------------------------------------------------


def _gone(request: Request) -> Response:
    """The one answer for unknown, revoked and expired links, and for anything not on the page."""
    return templates.TemplateResponse(request, "public_gone.html", {}, status_code=404, headers=PUBLIC_HEADERS)


def _age_in_words(age: str) -> str:
    age = age.strip().upper()
    if len(age) == 4 and age[:3].isdigit() and age[3] in AGE_UNITS and int(age[:3]) > 0:  # 000Y: a dummy
        number = int(age[:3])
        return f"{number} {AGE_UNITS[age[3]]}{'s' if number != 1 else ''} old"
    return ""


def _frames(cb: CasebankDep, instance: Instance) -> int:
    with cb.blobs.open(instance.blob_sha256) as f:
        header = dcmread(f, stop_before_pixels=True, specific_tags=["NumberOfFrames"])
    try:
        return max(int(header.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _page_series(cb: CasebankDep, token: str, case: Case, served: set[int]) -> list[dict[str, object]]:
    """Each image series with its served images in order: one image per frame for the few
    instances of a cine loop or an enhanced multi-frame object, the first frame otherwise."""
    shown = []
    for study in case.studies:
        for series in image_series(study.series):
            instances = [i for i in series.instances if i.id in served]
            if not instances:
                continue
            count_frames = len(instances) <= FRAMES_READ_UP_TO
            urls = [
                f"/p/{token}/instances/{i.id}/rendered" + (f"?frame={frame}" if frame > 1 else "")
                for i in instances
                for frame in range(1, (_frames(cb, i) if count_frames else 1) + 1)
            ]
            words = " · ".join(w for w in (series.modality, series.body_part.title(), series.description) if w)
            shown.append({"id": series.id, "title": words or "Images", "urls": urls})
    return shown


def _studies_in_words(case: Case) -> list[str]:
    lines = []
    for study in case.studies:
        if not image_series(study.series):
            continue
        who = ", ".join(w for w in (_age_in_words(study.patient_age or ""), SEXES.get((study.patient_sex or "").upper(), "")) if w)
        line = " · ".join(w for w in (study.description, who) if w)
        if line:
            lines.append(line)
    return lines


def _codes_in_words(case: Case) -> list[dict[str, str]]:
    return [{"display": c.display or c.code, "system": SYSTEM_TITLES.get(canonical_system(c.system), c.system), "code": c.code}
            for c in case.codes]


def _summary(case: Case) -> str:
    text = " ".join((case.diagnosis or case.findings or case.history or "An anonymised radiology teaching case").split())
    return text if len(text) <= 200 else text[:197].rsplit(" ", 1)[0] + "…"


@router.get("/p/{token}", response_class=HTMLResponse, include_in_schema=False)
def public_page(token: str, request: Request, cb: CasebankDep) -> Response:
    """The anonymised case: images large first, then the teaching text in plain words."""
    base = _base(request, cb)
    try:
        with cb.database.session() as session:
            link = public_links.resolve(session, token)
            case = link.case
            series = _page_series(cb, token, case, set(link.instance_ids or []))
            public_links.record_view(session, link)
            page_url = f"{base}/p/{token}"
            return templates.TemplateResponse(request, "public_case.html", {
                "case": case, "series": series, "studies": _studies_in_words(case), "codes": _codes_in_words(case),
                "summary": _summary(case), "page_url": page_url, "thumbnail_url": f"{page_url}/thumbnail.jpg",
                "thumbnail_size": THUMBNAIL_SIZE,
            }, headers=PUBLIC_HEADERS)
    except NotFound:
        return _gone(request)


def _served(session: Session, token: str, instance_id: int | None) -> tuple[Instance, Display]:
    """An instance of the live link (the page's first, for the thumbnail) and its series' saved display."""
    link = public_links.resolve(session, token)
    if instance_id is None:
        first = next((s for study in link.case.studies for s in image_series(study.series)
                      if any(i.id in link.instance_ids for i in s.instances)), None)
        if first is None:
            raise NotFound("this image does not exist")
        ids = [i.id for i in first.instances if i.id in link.instance_ids]
        instance_id = ids[len(ids) // 2]  # the middle of a stack says more than its first slice
    instance = public_links.public_instance(session, link, instance_id)
    return instance, Display.of(instance.series)


def _rendered(cb: CasebankDep, token: str, instance_id: int | None, frame: int, media_type: str,
              viewport: tuple[int, int] | None) -> bytes | None:
    """The frame as the editor saved the series' window, or None when the link does not serve it."""
    try:
        with cb.database.session() as session:
            instance, display = _served(session, token, instance_id)
            sha256 = instance.blob_sha256
    except NotFound:
        return None
    window = (Window(display.window_center, display.window_width)
              if display.window_center is not None and display.window_width is not None else None)
    with cb.blobs.open(sha256) as f:
        ds = dcmread(f)
    try:
        return render(ds, frame, viewport=viewport, window=window, media_type=media_type)
    except ArchiveError:  # a frame beyond the object's, or pixels no decoder reads
        return None


def _not_served() -> Response:
    return Response("Not Found", status_code=404, media_type="text/plain", headers=PUBLIC_HEADERS)


@router.get("/p/{token}/instances/{instance_id}/rendered", response_class=Response, include_in_schema=False)
def public_image(
    token: str, instance_id: int, cb: CasebankDep,
    frame: int = Query(1, ge=1), size: int = Query(IMAGE_SIZE, ge=16, le=2048, description="longest side in pixels"),
) -> Response:
    """A frame as PNG (pixels only: no DICOM header), for instances of the link only."""
    png = _rendered(cb, token, instance_id, frame, "image/png", (size, size))
    return Response(png, media_type="image/png", headers=IMAGE_HEADERS) if png is not None else _not_served()


@router.get("/p/{token}/thumbnail.jpg", response_class=Response, include_in_schema=False)
def thumbnail(token: str, cb: CasebankDep) -> Response:
    """The preview a link pasted into social media shows: the first series' middle image on black."""
    png = _rendered(cb, token, None, 1, "image/png", None)
    if png is None:
        return _not_served()
    image = ImageOps.contain(Image.open(io.BytesIO(png)).convert("RGB"), THUMBNAIL_SIZE)
    card = Image.new("RGB", THUMBNAIL_SIZE)
    card.paste(image, ((THUMBNAIL_SIZE[0] - image.width) // 2, (THUMBNAIL_SIZE[1] - image.height) // 2))
    out = io.BytesIO()
    card.save(out, format="JPEG", quality=85)
    return Response(out.getvalue(), media_type="image/jpeg", headers=IMAGE_HEADERS)
