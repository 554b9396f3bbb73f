"""Downloading a frozen cohort version: at once (a zip response) or as a job a page can follow.

Rights are the cohort's (``archive.cohorts.get_version``): anyone else gets 404. The database is
read in one short transaction; the zip is written outside it and audited when complete."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from archive import cohorts
from archive.errors import Conflict
from archive.models import User
from export.cohort_export import ExportSource, export_filename, export_source, record_export, write_export
from export.jobs import ExportJobs

from ..deps import CasebankDep, CredentialsDep
from ..runtime import Casebank

router = APIRouter(tags=["cohorts"])
ZIP = "application/zip"


class ExportJobOut(BaseModel):
    job: str
    state: str  # running | done | failed
    done: int
    total: int
    error: str
    status_url: str
    download_url: str | None


def jobs_of(request: Request) -> ExportJobs:
    return request.app.state.export_jobs


def _source(cb: Casebank, credentials, cohort_id: int, number: int) -> tuple[int, ExportSource]:  # type: ignore[no-untyped-def]
    with cb.database.session() as session:
        user = credentials.user(session)
        return user.id, export_source(session, cohorts.get_version(session, user, cohort_id, number))


def _audit(cb: Casebank, user_id: int, source: ExportSource, counts) -> None:  # type: ignore[no-untyped-def]
    with cb.database.session() as session:
        record_export(session, session.get_one(User, user_id), source, counts)


@router.get("/api/cohorts/{cohort_id}/versions/{number}/export", response_class=FileResponse,
            responses={200: {"content": {ZIP: {}}}})
def download_export(cohort_id: int, number: int, cb: CasebankDep, credentials: CredentialsDep) -> FileResponse:
    """The version's zip: DICOMDIR file-set, cohort.csv, fhir-bundle.json and README.txt."""
    user_id, source = _source(cb, credentials, cohort_id, number)
    handle = tempfile.NamedTemporaryFile(prefix="casebank-export-", suffix=".zip", delete=False)
    handle.close()
    path = Path(handle.name)
    try:
        counts = write_export(cb.blobs, source, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _audit(cb, user_id, source, counts)
    return FileResponse(path, media_type=ZIP, filename=export_filename(source),
                        background=BackgroundTask(path.unlink, missing_ok=True))


def _job_out(token: str, snapshot: dict[str, object]) -> ExportJobOut:
    return ExportJobOut(
        job=token, status_url=f"/api/exports/{token}",
        download_url=f"/api/exports/{token}/download" if snapshot["state"] == "done" else None,
        **snapshot,  # type: ignore[arg-type]
    )


@router.post("/api/cohorts/{cohort_id}/versions/{number}/exports", status_code=202, response_model=ExportJobOut)
def start_export(cohort_id: int, number: int, request: Request, cb: CasebankDep,
                 credentials: CredentialsDep) -> ExportJobOut:
    """Start the export in the background; follow it at ``status_url`` (done / total = progress)."""
    user_id, source = _source(cb, credentials, cohort_id, number)

    def work(path: Path, progress) -> None:  # type: ignore[no-untyped-def]
        counts = write_export(cb.blobs, source, path, progress)
        _audit(cb, user_id, source, counts)

    job = jobs_of(request).start(user_id, export_filename(source), work)
    return _job_out(job.token, job.snapshot())


@router.get("/api/exports/{token}", response_model=ExportJobOut)
def export_status(token: str, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> ExportJobOut:
    with cb.database.session() as session:
        user_id = credentials.user(session).id
    job = jobs_of(request).get(token, user_id)
    return _job_out(job.token, job.snapshot())


@router.get("/api/exports/{token}/download", response_class=FileResponse, responses={200: {"content": {ZIP: {}}}})
def export_download(token: str, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> FileResponse:
    with cb.database.session() as session:
        user_id = credentials.user(session).id
    job = jobs_of(request).get(token, user_id)
    if job.snapshot()["state"] != "done":
        raise Conflict(f"the export is {job.snapshot()['state']}, not ready to download")
    return FileResponse(job.path, media_type=ZIP, filename=job.filename)
