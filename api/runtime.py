"""The composition root: builds the database, blob store, search index and receiver from settings."""

from __future__ import annotations

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

from .settings import Settings


@dataclass
class Casebank:
    settings: Settings
    database: Database
    blobs: BlobStore
    index: SearchIndex
    indexer: CaseIndexer
    receivers: list[Receiver] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings | None = None, *, migrate: bool = True) -> Casebank:
        settings = settings or Settings()
        settings.data.mkdir(parents=True, exist_ok=True)
        database = Database(settings.resolved_database_url())
        if migrate:
            database.migrate()
        blobs = BlobStore(settings.data / "blobs")
        index = open_search_index(settings)
        indexer = CaseIndexer(database, index)
        database.on_cases_changed(indexer)
        database.send_mail = SmtpMailer(settings.smtp_url) if settings.smtp_url else log_only
        return cls(settings, database, blobs, index, indexer)

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
    if settings.search_url:
        raise NotImplementedError(
            "CASEBANK_SEARCH_URL (OpenSearch) is not supported yet; unset it to use the embedded index"
        )
    return TantivyIndex(settings.data / "index")
