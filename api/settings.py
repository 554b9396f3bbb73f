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
    # the DICOM door
    dicom_host: str | None = Field(None, description="address the DICOM receiver binds to (default: the host of CASEBANK_HTTP)")
    dicom_max_associations: int = Field(32, ge=1, description="DICOM associations served at once")
    dicom_idle_timeout: float = Field(60, gt=0, description="seconds an association may stay silent before it is dropped")
    known_aes_only: bool = Field(False, description="refuse associations from calling AE titles not in the AE registry (casebank ae add)")
    max_object_bytes: int = Field(1 << 30, ge=1024, description="largest DICOM object accepted over C-STORE or STOW-RS")
    max_stow_bytes: int = Field(4 << 30, ge=1024, description="largest STOW-RS request body")
    dicom_tls_cert: Path | None = Field(None, description="PEM certificate: the DICOM port speaks TLS (with CASEBANK_DICOM_TLS_KEY)")
    dicom_tls_key: Path | None = Field(None, description="PEM private key of the DICOM TLS certificate")
    dicom_tls_ca: Path | None = Field(None, description="PEM CA bundle: DICOM TLS clients must present a certificate it signed")
    # accounts
    session_hours: float = Field(12, gt=0, description="hours a browser session lasts (ended earlier by logout)")
    token_days: float = Field(90, gt=0, description="days a new bearer token is valid")
    login_rate: str = Field("10/minute", description="failed logins allowed per user name and per address (limits syntax)")

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
