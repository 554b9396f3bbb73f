"""Background exports a page can follow: each runs in a thread, writing a zip to a temp file.

A job is known by an unguessable token and belongs to the user who started it; finished jobs
(and their files) are removed after :data:`KEEP_SECONDS`.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from archive.errors import ArchiveError, Conflict, NotFound

log = logging.getLogger(__name__)

KEEP_SECONDS = 3600.0
MAX_RUNNING_PER_USER = 2

Work = Callable[[Path, Callable[[int, int], None]], None]
"""Writes the export to the path, calling progress(done, total) as it goes."""


@dataclass
class ExportJob:
    token: str
    user_id: int
    filename: str
    path: Path
    state: str = "running"  # running | done | failed
    done: int = 0
    total: int = 0
    error: str = ""
    finished_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, done: int, total: int) -> None:
        with self.lock:
            self.done, self.total = done, total

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            return {"state": self.state, "done": self.done, "total": self.total, "error": self.error}


class ExportJobs:
    """The jobs of one application (kept on ``app.state``); safe to use from any thread."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.keep_seconds = keep_seconds
        self._jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()

    def start(self, user_id: int, filename: str, work: Work) -> ExportJob:
        """Run `work` in a thread; refused while the user already has MAX_RUNNING_PER_USER running."""
        self.sweep()
        with self._lock:
            running = sum(1 for j in self._jobs.values() if j.user_id == user_id and j.state == "running")
            if running >= MAX_RUNNING_PER_USER:
                raise Conflict(f"{running} exports of yours are still running; wait for one to finish")
            handle = tempfile.NamedTemporaryFile(prefix="casebank-export-", suffix=".zip", delete=False)
            handle.close()
            job = ExportJob(secrets.token_urlsafe(24), user_id, filename, Path(handle.name))
            self._jobs[job.token] = job
        threading.Thread(target=self._run, args=(job, work), name=f"export-{job.token[:6]}", daemon=True).start()
        return job

    def _run(self, job: ExportJob, work: Work) -> None:
        try:
            work(job.path, job.progress)
        except Exception as exc:  # reported to the page; the traceback goes to the log
            log.exception("export %s failed", job.filename)
            job.path.unlink(missing_ok=True)
            with job.lock:
                reason = str(exc) if isinstance(exc, ArchiveError) else type(exc).__name__
                job.state, job.error = "failed", f"the export failed: {reason}"
        else:
            with job.lock:
                job.state = "done"
        finally:
            job.finished_at = time.monotonic()

    def get(self, token: str, user_id: int) -> ExportJob:
        """The user's own job; anyone else's, or an unknown token, is NotFound alike."""
        self.sweep()
        with self._lock:
            job = self._jobs.get(token)
        if job is None or job.user_id != user_id:
            raise NotFound("export job does not exist")
        return job

    def sweep(self, now: float | None = None) -> None:
        """Forget finished jobs older than keep_seconds and delete their files."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [t for t, j in self._jobs.items() if j.finished_at is not None and now - j.finished_at > self.keep_seconds]
            for token in old:
                self._jobs.pop(token).path.unlink(missing_ok=True)

    def close(self) -> None:
        """Delete every finished job's file (running jobs delete theirs when they fail)."""
        self.sweep(now=float("inf"))
