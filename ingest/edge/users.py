"""The people who may export from this hospital: a small file in the edge's data folder.

The edge runs inside the hospital, apart from the archive, so it keeps its own accounts; each
holds the GMC number the ATFI report is signed with (the archive files the case by it).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from archive.security import generate_password, hash_password, verify_password

from .files import write_durably

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
GMC = re.compile(r"^\d{7}$")


class EdgeUserError(ValueError):
    """A user cannot be added or found; the message says why."""


@dataclass(frozen=True)
class EdgeUser:
    username: str
    display_name: str  # DICOM person name, Family^Given
    gmc: str
    password_hash: str

    @property
    def readable_name(self) -> str:
        family, _, given = self.display_name.partition("^")
        return f"{given.split('^')[0]} {family}".strip() if given else family


class EdgeUsers:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _all(self) -> dict[str, EdgeUser]:
        if not self.path.is_file():
            return {}
        return {name: EdgeUser(**fields) for name, fields in json.loads(self.path.read_text()).items()}

    def add(self, username: str, *, display_name: str, gmc: str, password: str | None = None) -> str:
        """Add a user; returns the password (generated when none is given)."""
        if not USERNAME.match(username):
            raise EdgeUserError(f"user name {username!r} must be lower-case letters, digits, '.', '_' or '-'")
        if not GMC.match(gmc):
            raise EdgeUserError(f"GMC number {gmc!r} must be 7 digits")
        if not display_name.strip():
            raise EdgeUserError("a display name (Family^Given) is needed: it signs the teaching-file report")
        password = password or generate_password()
        with self._lock:
            users = self._all()
            if username in users:
                raise EdgeUserError(f"user {username} already exists")
            users[username] = EdgeUser(username, display_name.strip(), gmc, hash_password(password))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_durably(self.path, json.dumps({n: asdict(u) for n, u in users.items()}, indent=1).encode())
        return password

    def get(self, username: str) -> EdgeUser | None:
        return self._all().get(username)

    def authenticate(self, username: str, password: str) -> EdgeUser | None:
        user = self.get(username)
        return user if user is not None and verify_password(user.password_hash, password) else None
