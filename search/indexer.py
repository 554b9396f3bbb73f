"""Keeps the index in step with the database: subscribed to `Database.on_cases_changed`."""

from __future__ import annotations

import logging

from sqlalchemy import select

from archive.cases import cases_for_indexing
from archive.db import Database
from archive.models import Case

from .document import document_for
from .index import SearchIndex

log = logging.getLogger(__name__)


class CaseIndexer:
    def __init__(self, database: Database, index: SearchIndex) -> None:
        self.database = database
        self.index = index

    def __call__(self, case_ids: set[int]) -> None:
        with self.database.session() as session:
            cases = cases_for_indexing(session, case_ids)
            documents = [document_for(case) for case in cases]
        self.index.upsert(documents)
        self.index.delete(case_ids - {d.case_id for d in documents})
        log.debug("indexed %d case(s)", len(documents))

    def reindex_all(self) -> int:
        with self.database.session() as session:
            ids = set(session.scalars(select(Case.id)))
        if ids:
            self(ids)
        return len(ids)
