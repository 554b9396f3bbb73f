"""All configuration, from the environment (12-factor). `casebank --help` lists these variables."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEBANK_")

    data: Path = Field(Path("./casebank-data"), description="folder for the database, blobs and index")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite under DATA")
    search_url: str | None = Field(None, description="OpenSearch URL; default tantivy under DATA")
    search_prefix: str = Field("casebank", description="OpenSearch index and alias prefix (several archives may share a cluster)")
    search_shards: int = Field(1, ge=1, description="OpenSearch primary shards of a new index")
    search_replicas: int = Field(0, ge=0, description="OpenSearch replicas of each shard (1+ to survive losing a node)")
    smtp_url: str | None = Field(None, description="smtp://host:port for notices to folder owners")
    secret_key: str | None = Field(None, description="signs browser sessions; default kept under DATA")
    http: str = Field("127.0.0.1:8000", description="HOST:PORT for the web UI, REST API and DICOMweb")
    dicom_port: int = Field(11112, description="port of the DICOM receiver (C-ECHO, C-STORE)")
    ae_title: str = Field("CASEBANK", description="AE title of the DICOM receiver")
    assembly_wait: float = Field(
        600, description="seconds a submission waits for the objects its manifest names"
    )
    base_url: str | None = Field(None, description="public URL of the archive, for links in mail")
    cors_origins: str = Field("", description="comma-separated origins (e.g. an OHIF viewer's) allowed to call /dicomweb and /api with a bearer token")

    def resolved_database_url(self) -> str:
        from archive.db import sqlite_url

        return self.database_url or sqlite_url(self.data)

    def resolved_secret_key(self) -> str:
        """The session-signing key: from the environment, else generated once and kept under DATA."""
        if self.secret_key:
            return self.secret_key
        path = self.data / "secret_key"
        if not path.exists():
            self.data.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def http_host_port(self) -> tuple[str, int]:
        host, _, port = self.http.rpartition(":")
        return host or "127.0.0.1", int(port)


def environment_help() -> str:
    lines = ["environment variables:"]
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else "-"
        lines.append(f"  CASEBANK_{name.upper():<14} {field.description} (default: {default})")
    return "\n".join(lines)
