"""The per-project secret from which every replacement value is derived.

Every derivation is an HMAC-SHA256 keyed by the project's secret over a purpose label and the
original value, so the same input gives the same output within a project, unrelated outputs
across projects, and nobody holding an original UID or patient ID can recompute the mapping
without the secret (PS3.15 E.1.1 Note 3 warns that unkeyed hashes fall to dictionary attacks).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class ProjectKey:
    """A project's de-identification secret.

    Attributes
    ----------
    secret : bytes
        At least 16 random bytes; keep it with the project's custodian. Never printed.

    Raises
    ------
    ValueError
        If the secret is shorter than 16 bytes.
    """

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a project key needs at least {MIN_SECRET_BYTES} secret bytes")

    @classmethod
    def generate(cls) -> ProjectKey:
        """A new random key (32 bytes)."""
        return cls(secrets.token_bytes(32))

    def digest(self, purpose: str, value: str) -> bytes:
        """HMAC-SHA256 of ``value`` for one ``purpose`` (``"uid"``, ``"patient"``, ...)."""
        message = purpose.encode("ascii") + b"\x00" + value.encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def number(self, purpose: str, value: str) -> int:
        """The first 8 bytes of :meth:`digest` as an unsigned integer."""
        return int.from_bytes(self.digest(purpose, value)[:8], "big")
