"""Test helpers for who sends: registering AEs in the archive's AE registry."""

from __future__ import annotations

from archive import senders
from archive.models import AeTrust


def register_ae(casebank, ae_title: str, trust: str = "pacs", host: str = "") -> None:  # type: ignore[no-untyped-def]
    """Register a calling AE, as `casebank ae add AE --trust TRUST [--host HOST]` does."""
    with casebank.database.session() as session:
        senders.register_ae(session, ae_title, AeTrust(trust), host=host)
