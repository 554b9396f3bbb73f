"""The FastAPI application factory."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware

from export.jobs import ExportJobs
from ui import STATIC

from . import problems
from .deps import verify_csrf
from .headers import SecurityHeaders
from .login import LoginGuard
from .routes import (
    auth,
    case_exports,
    case_extras,
    case_pages,
    cases,
    cohort_export,
    dicomweb,
    dicomweb_read,
    fhir,
    folder_pages,
    folders,
    forwarding,
    health,
    pages,
    project_pages,
    projects,
    public,
    quarantine,
    quarantine_pages,
    quizzes,
    search,
    terminology,
    viewer,
)
from .runtime import Casebank


def _private(path: Path) -> None:
    """Data files hold patients' images' metadata and the session-signing key: owner only."""
    if path.is_file():
        os.chmod(path, 0o600)


def create_app(casebank: Casebank) -> FastAPI:
    settings = casebank.settings
    https = (settings.base_url or "").lower().startswith("https://")
    app = FastAPI(
        title="Casebank",
        summary="Radiology teaching-file and research repository",
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        dependencies=[Depends(verify_csrf)],  # every route: forged cookie-authenticated writes refused
    )
    app.state.casebank = casebank
    app.state.login_guard = LoginGuard(settings.login_rate)
    app.state.export_jobs = ExportJobs()
    origins = [o.strip().rstrip("/") for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # a viewer served elsewhere (OHIF) reads DICOMweb with a bearer token, not the session cookie
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Accept", "Content-Type"],
                           expose_headers=["Content-Type", "Content-Length", "Warning"])
    secret = settings.resolved_secret_key()
    _private(settings.data / "secret_key")
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="casebank_session",
        # the cookie only carries the key of a server-side session (and the CSRF token); the
        # server's expires_at and logout decide how long it works
        max_age=int(settings.session_hours * 3600),
        same_site="lax",
        https_only=https,
    )
    app.add_middleware(SecurityHeaders, https=https)
    problems.install(app, html_error_page=pages.render_error)
    for module in (health, auth, folders, cases, case_extras, case_exports, search, terminology, quarantine, dicomweb, dicomweb_read, viewer, projects, cohort_export, fhir,
                   forwarding, folder_pages, case_pages, quarantine_pages, project_pages, quizzes, public, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
