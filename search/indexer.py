"""Keeps the index in step with the database, which is the source of truth.

Every change to a case queues it (``search_pending``, written in the change's own transaction).
``catch_up`` indexes the queue and removes what the index has confirmed; when the backend is down
the rows stay and the next change, or the periodic catch-up, retries. Nothing is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select

from archive.cases import cases_for_indexing
from archive.db import Database
from archive.models import Case, Like, SearchPending

from .document import document_for
from .index import CaseDocument, Progress, SearchIndex

if TYPE_CHECKING:
    from terminology import Terminology

log = logging.getLogger(__name__)

BATCH = 500
CATCH_UP_SECONDS = 5.0


class CaseIndexer:
    def __init__(self, database: Database, index: SearchIndex, terminology: Terminology | None = None) -> None:
        self.database = database
        self.index = index
        self.terminology = terminology
        self.last_error = ""
        self._draining = threading.Lock()
        self._again = threading.Event()

    def __call__(self, case_ids: set[int]) -> None:
        """After a commit: index the queue (which holds ``case_ids`` and anything left from before)."""
        self.catch_up()

    def documents(self, case_ids: set[int]) -> list[CaseDocument]:
        with self.database.session() as session:
            cases = cases_for_indexing(session, case_ids)
            likes = dict(session.execute(
                select(Like.case_id, func.count()).where(Like.case_id.in_(case_ids)).group_by(Like.case_id)
            ).all())
            return [document_for(case, likes=likes.get(case.id, 0), terminology=self.terminology) for case in cases]

    def pending(self) -> int:
        with self.database.session() as session:
            return session.scalar(select(func.count(SearchPending.id))) or 0

    def catch_up(self) -> int:
        """Index every queued case; returns how many were confirmed. Never raises for the backend."""
        if not self._draining.acquire(blocking=False):
            self._again.set()  # the thread draining now goes round once more
            return 0
        done = 0
        try:
            while True:
                self._again.clear()
                batch = self._drain_batch()
                if batch < 0:
                    return done
                done += batch
                if batch == 0 and not self._again.is_set():
                    return done
        finally:
            self._draining.release()

    def _drain_batch(self) -> int:
        """One batch: 0 when the queue is empty, -1 when the backend refused."""
        with self.database.session() as session:
            rows = session.execute(select(SearchPending.id, SearchPending.case_id).order_by(SearchPending.id).limit(BATCH)).all()
        if not rows:
            return 0
        case_ids = {case_id for _, case_id in rows}
        try:
            documents = self.documents(case_ids)
            self.index.upsert(documents)
            self.index.delete(case_ids - {d.case_id for d in documents})
        except Exception as exc:  # the backend is down or refused: the rows stay queued
            if str(exc) != self.last_error:
                log.warning("search index unavailable, %d case(s) wait in the queue: %s", len(case_ids), exc)
            self.last_error = str(exc)
            return -1
        self.last_error = ""
        with self.database.session() as session:
            session.execute(delete(SearchPending).where(SearchPending.id.in_([row_id for row_id, _ in rows])))
        return len(case_ids)

    def reindex_all(self, progress: Progress | None = None) -> int:
        """Rebuild the whole index from the database; the queue up to now is then satisfied."""
        with self.database.session() as session:
            last_queued = session.scalar(select(func.max(SearchPending.id))) or 0
        count = self.index.rebuild(self._all_documents(), progress)
        with self.database.session() as session:
            session.execute(delete(SearchPending).where(SearchPending.id <= last_queued))
        return count

    def case_count(self) -> int:
        with self.database.session() as session:
            return session.scalar(select(func.count(Case.id))) or 0

    def _all_documents(self) -> Iterator[CaseDocument]:
        with self.database.session() as session:
            ids = list(session.scalars(select(Case.id).order_by(Case.id)))
        for start in range(0, len(ids), BATCH):
            yield from self.documents(set(ids[start:start + BATCH]))


class CatchUpThread:
    """Retries the queue every few seconds, so cases changed during an outage become searchable
    when the backend returns even if nothing else changes."""

    def __init__(self, indexer: CaseIndexer, interval: float = CATCH_UP_SECONDS) -> None:
        self.indexer = indexer
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="search-catch-up", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.indexer.catch_up()
            except Exception:  # the database itself failing: try again next round
                log.exception("search catch-up failed")
