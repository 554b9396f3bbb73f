"""Cross-site request forgery protection for cookie-authenticated writes (archive and edge).

A page on another origin of the same *site* (another port of the same host, a sibling subdomain)
gets the session cookie sent along with a form post, because SameSite=Lax looks at the site, not the
origin. Two independent checks stop it:

* **Origin check**: an unsafe request whose Origin (or, lacking one, Referer) names another origin
  is refused outright.
* **Synchronizer token**: a random token kept in the signed session cookie must come back in the
  form field ``csrf_token`` or the ``X-CSRF-Token`` header. Another origin can neither read it nor
  forge the signed cookie that holds it.

Requests authenticated by ``Authorization: Bearer`` carry no ambient credentials and are exempt.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import Request
from markupsafe import Markup, escape

from archive.errors import NotPermitted

SESSION_KEY = "csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfRefused(NotPermitted):
    """Answered 403: the request may have been forged by another site."""


def csrf_token(request: Request) -> str:
    """This browser session's token, created on first use."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


def csrf_field(request: Request) -> Markup:
    """The hidden input every POST form carries: ``{{ csrf_field(request) }}``."""
    return Markup('<input type="hidden" name="%s" value="%s">') % (FIELD, escape(csrf_token(request)))


def csrf_meta(request: Request) -> Markup:
    """A meta tag the page's own JavaScript reads to send ``X-CSRF-Token`` on fetch writes."""
    return Markup('<meta name="csrf-token" content="%s">') % escape(csrf_token(request))


def install_globals(env: object) -> None:
    """Makes ``csrf_field(request)`` and ``csrf_meta(request)`` available to every template."""
    env.globals["csrf_field"] = csrf_field  # type: ignore[attr-defined]
    env.globals["csrf_meta"] = csrf_meta  # type: ignore[attr-defined]


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _own_origins(request: Request, base_url: str | None) -> set[str]:
    """The origin the browser used to reach us, and the configured public one (behind a proxy)."""
    own = {f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}".lower()}
    if base_url and (configured := _origin_of(base_url)):
        own.add(configured)
    return own


def _is_bearer(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def check_origin(request: Request, base_url: str | None) -> None:
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        return  # some clients send neither; the token still has to match
    origin = _origin_of(claimed) if claimed != "null" else "null"
    if origin not in _own_origins(request, base_url):
        raise CsrfRefused(f"cross-origin request from {origin or claimed!r} refused")


async def _submitted_token(request: Request) -> str | None:
    header = request.headers.get(HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        # FastAPI has already parsed the form for Form() parameters; Starlette caches it.
        value = (await request.form()).get(FIELD)
        return value if isinstance(value, str) else None
    return None


def _is_json_login(request: Request) -> bool:
    """The REST login posts JSON, which another site can only send after a CORS preflight the
    archive does not grant; it has no session to forge against yet, so it needs no token (the
    Origin check still applies)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return request.url.path == "/api/session" and request.method.upper() == "POST" and content_type == "application/json"


async def verify(request: Request, base_url: str | None) -> None:
    """Refuses an unsafe, cookie-authenticated (or anonymous) request without a valid token."""
    if request.method.upper() in SAFE_METHODS or _is_bearer(request):
        return
    check_origin(request, base_url)
    if _is_json_login(request):
        return
    expected = request.session.get(SESSION_KEY)
    submitted = await _submitted_token(request)
    if not isinstance(expected, str) or not submitted or not secrets.compare_digest(expected, submitted):
        raise CsrfRefused(
            "missing or wrong CSRF token: reload the page and try again "
            "(scripts: send 'Authorization: Bearer <token>' instead of a session cookie)"
        )
