"""The composition root: builds the database, blob store, search index and receiver from settings."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from archive.blobs import BlobStore
from archive.db import Database
from archive.forwarding import Forwarder
from archive.mail import SmtpMailer, log_only
from ingest.intake import Intake
from ingest.receiver import Receiver, ReceiverConfig, server_tls_context
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
        swept = blobs.sweep_temp()  # left by a process killed mid-write; nothing else would remove them
        if swept:
            log.info("removed %d abandoned temp blob(s)", swept)
        terminology = Terminology(settings.data / "terminology")
        index = open_search_index(settings)
        indexer = CaseIndexer(database, index, terminology)
        database.on_cases_changed(indexer)
        if getattr(index, "was_reset", False):  # the index schema changed: fill it again from the database
            log.info("search index schema changed: reindexing %d case(s)", indexer.reindex_all())
        database.send_mail = SmtpMailer(settings.smtp_url) if settings.smtp_url else log_only
        return cls(settings, database, blobs, index, indexer, terminology)

    @cached_property
    def forwarder(self) -> Forwarder:
        """Outboxes of the forwarding destinations (archive.forwarding); `serve` starts them."""
        return Forwarder(self.settings.data / "outbox", self.settings.ae_title)

    def start_forwarding(self) -> None:
        from archive.forwarding import list_destinations  # noqa: PLC0415

        with self.database.session() as session:
            destinations = list_destinations(session)
            for destination in destinations:
                session.expunge(destination)
        self.forwarder.start(destinations)

    @cached_property
    def intake(self) -> Intake:
        return Intake(self.database, self.blobs, timedelta(seconds=self.settings.assembly_wait))

    def receiver(self, host: str | None = None) -> Receiver:
        """The DICOM receiver as configured; `host` overrides CASEBANK_DICOM_HOST (tests bind loopback)."""
        receiver = Receiver(self.intake, receiver_config(self.settings, host))
        self.receivers.append(receiver)
        return receiver

    def __enter__(self) -> Casebank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if "forwarder" in self.__dict__:
            self.forwarder.stop()
        for receiver in self.receivers:
            receiver.stop()
        self.index.close()
        self.database.dispose()


def open_search_index(settings: Settings) -> SearchIndex:
    """OpenSearch when CASEBANK_SEARCH_URL is set, else the embedded tantivy index."""
    if settings.search_url:
        from search.opensearch_backend import OpenSearchIndex

        return OpenSearchIndex(settings.search_url, prefix=settings.search_prefix,
                               shards=settings.search_shards, replicas=settings.search_replicas)
    return TantivyIndex(settings.data / "index")


def receiver_config(settings: Settings, host: str | None = None) -> ReceiverConfig:
    """The DICOM door from settings. It binds where HTTP binds unless told otherwise, so an archive
    kept to loopback for HTTP does not open its DICOM port to the network."""
    return ReceiverConfig(
        ae_title=settings.ae_title,
        host=host or settings.dicom_host or settings.http_host_port()[0],
        port=settings.dicom_port,
        max_associations=settings.dicom_max_associations,
        idle_timeout=settings.dicom_idle_timeout,
        max_object_bytes=settings.max_object_bytes,
        known_aes_only=settings.known_aes_only,
        ssl_context=dicom_tls_context(settings),
    )


def dicom_tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.dicom_tls_cert is None and settings.dicom_tls_key is None:
        return None
    if settings.dicom_tls_cert is None or settings.dicom_tls_key is None:
        raise ValueError("CASEBANK_DICOM_TLS_CERT and CASEBANK_DICOM_TLS_KEY must be set together")
    ca = str(settings.dicom_tls_ca) if settings.dicom_tls_ca else None
    return server_tls_context(str(settings.dicom_tls_cert), str(settings.dicom_tls_key), ca)
