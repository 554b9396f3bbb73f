"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
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
