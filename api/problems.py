"""Every error leaves the HTTP API as RFC 9457 problem+json, never as a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from archive.errors import ArchiveError, Conflict, InvalidInput, NotAuthenticated, NotFound, NotPermitted

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_OF: dict[type[ArchiveError], tuple[int, str]] = {
    NotFound: (404, "Not Found"),
    NotPermitted: (403, "Forbidden"),
    NotAuthenticated: (401, "Unauthorized"),
    InvalidInput: (422, "Invalid input"),
    Conflict: (409, "Conflict"),
}


def problem(status: int, title: str, detail: str, instance: str | None = None, **extra: object) -> JSONResponse:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


HtmlErrorPage = Callable[[Request, int, str, ArchiveError], Response]


def wants_html(request: Request) -> bool:
    """Pages get an HTML error; the REST API, DICOMweb and scripts get problem+json."""
    path = request.url.path
    return not path.startswith(("/api", "/dicomweb")) and "text/html" in request.headers.get("accept", "")


def install(app: FastAPI, html_error_page: HtmlErrorPage | None = None) -> None:
    @app.exception_handler(ArchiveError)
    async def domain_error(request: Request, exc: ArchiveError) -> Response:
        status, title = next(
            (v for cls, v in STATUS_OF.items() if isinstance(exc, cls)), (400, "Refused")
        )
        if html_error_page is not None and wants_html(request):
            return html_error_page(request, status, title, exc)
        return problem(status, title, str(exc), request.url.path)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, _reason(exc.status_code), str(exc.detail), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem(422, "Invalid request", detail, request.url.path, errors=errors)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "Internal Server Error", f"the archive failed: {type(exc).__name__}", request.url.path)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
