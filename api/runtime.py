"""The composition root: builds the database, blob store, search index and receiver from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from archive.blobs import BlobStore
from archive.db import Database
from archive.mail import SmtpMailer, log_only
from ingest.intake import Intake
from ingest.receiver import Receiver, ReceiverConfig
from search.index import SearchIndex
from search.indexer import CaseIndexer
from search.tantivy_backend import TantivyIndex
from terminology import Terminology

from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Casebank:
    settings: Settings
    database: Database
    blobs: BlobStore
    index: SearchIndex
    indexer: CaseIndexer
    terminology: Terminology
    receivers: list[Receiver] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings | None = None, *, migrate: bool = True) -> Casebank:
        settings = settings or Settings()
        settings.data.mkdir(parents=True, exist_ok=True)
        database = Database(settings.resolved_database_url())
        if migrate:
            database.migrate()
        blobs = BlobStore(settings.data / "blobs")
        terminology = Terminology(settings.data / "terminology")
        index = open_search_index(settings)
        indexer = CaseIndexer(database, index, terminology)
        database.on_cases_changed(indexer)
        if getattr(index, "was_reset", False):  # the index schema changed: fill it again from the database
            log.info("search index schema changed: reindexing %d case(s)", indexer.reindex_all())
        database.send_mail = SmtpMailer(settings.smtp_url) if settings.smtp_url else log_only
        return cls(settings, database, blobs, index, indexer, terminology)

    @cached_property
    def intake(self) -> Intake:
        return Intake(self.database, self.blobs, timedelta(seconds=self.settings.assembly_wait))

    def receiver(self, host: str = "0.0.0.0") -> Receiver:
        config = ReceiverConfig(ae_title=self.settings.ae_title, host=host, port=self.settings.dicom_port)
        receiver = Receiver(self.intake, config)
        self.receivers.append(receiver)
        return receiver

    def __enter__(self) -> Casebank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for receiver in self.receivers:
            receiver.stop()
        self.index.close()
        self.database.dispose()


def open_search_index(settings: Settings) -> SearchIndex:
    """OpenSearch when CASEBANK_SEARCH_URL is set, else the embedded tantivy index."""
    if settings.search_url:
        from search.opensearch_backend import OpenSearchIndex  # noqa: PLC0415 (only needed at scale)

        return OpenSearchIndex(settings.search_url, prefix=settings.search_prefix,
                               shards=settings.search_shards, replicas=settings.search_replicas)
    return TantivyIndex(settings.data / "index")
