"""Ends the wait of submissions whose objects never all arrived, on a timer in the serve process."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from archive import submissions
from archive.db import Database
from archive.models import utcnow

log = logging.getLogger(__name__)


class AssemblySweeper:
    def __init__(self, database: Database, wait: timedelta, interval: float | None = None) -> None:
        self.database = database
        self.wait = wait
        self.interval = interval or max(1.0, min(30.0, wait.total_seconds() / 4))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="assembly-sweeper", daemon=True)

    def run_once(self) -> int:
        with self.database.session() as session:
            return submissions.sweep(session, utcnow(), self.wait)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if done := self.run_once():
                    log.info("assembled %d overdue submission(s) or manifest-less case(s)", done)
            except Exception:  # keep sweeping; the next round retries
                log.exception("assembly sweep failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
