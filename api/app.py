"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware

from ui import STATIC

from . import problems
from .routes import auth, case_extras, case_pages, cases, dicomweb, dicomweb_read, folder_pages, folders, health, pages, quarantine, search, terminology, viewer
from .runtime import Casebank

SESSION_MAX_AGE = 12 * 3600  # one working day


def create_app(casebank: Casebank) -> FastAPI:
    app = FastAPI(
        title="Casebank",
        summary="Radiology teaching-file and research repository",
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.casebank = casebank
    origins = [o.strip().rstrip("/") for o in casebank.settings.cors_origins.split(",") if o.strip()]
    if origins:  # a viewer served elsewhere (OHIF) reads DICOMweb with a bearer token, not the session cookie
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Accept", "Content-Type"],
                           expose_headers=["Content-Type", "Content-Length", "Warning"])
    app.add_middleware(
        SessionMiddleware,
        secret_key=casebank.settings.resolved_secret_key(),
        session_cookie="casebank_session",
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=False,
    )
    problems.install(app, html_error_page=pages.render_error)
    for module in (health, auth, folders, cases, case_extras, search, terminology, quarantine, dicomweb, dicomweb_read, viewer, folder_pages, case_pages, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
