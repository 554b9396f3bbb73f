"""Content-addressed blob store: identical content is stored once, and a blob is durable before use.

Layout: ``ROOT/sha256/ab/cd/abcd...``. Writes go to a temp file in the same directory tree,
are fsynced, then atomically renamed into place and the directory fsynced, so a crash leaves
either the whole blob or nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
STALE_TEMP_SECONDS = 3600.0  # no blob write takes an hour; an older temp file is abandoned


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    created: bool  # False when identical content was already stored


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> StoredBlob:
        digest = hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return StoredBlob(digest, len(data), created=False)
        return self.put_stream(io.BytesIO(data))

    def put_stream(self, stream: BinaryIO) -> StoredBlob:
        """Store a stream of unknown size without holding it all in memory."""
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix=temp_prefix())
        hasher, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            digest = hasher.hexdigest()
            if self.exists(digest):
                os.unlink(tmp_name)
                return StoredBlob(digest, size, created=False)
            self._move_into_place(Path(tmp_name), digest)
            return StoredBlob(digest, size, created=True)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def _move_into_place(self, tmp: Path, digest: str) -> None:
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def sweep_temp(self, max_age: float = STALE_TEMP_SECONDS, now: float | None = None) -> int:
        """Remove temp files a killed process left behind; returns how many.

        Several processes may share one blob store, so a temp file is only removed when the process
        named in it (on this host) is gone, or when it is older than `max_age` whoever wrote it."""
        now = time.time() if now is None else now
        removed = 0
        for entry in self.tmp_dir.iterdir():
            try:
                stale = now - entry.stat().st_mtime > max_age or _writer_is_gone(entry.name)
                if stale and entry.is_file():
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:  # renamed into place or removed by its writer meanwhile
                continue
        return removed

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()


def temp_prefix() -> str:
    """Temp files are named after their writer (host and pid), so a sweep can tell abandoned ones."""
    return f"{socket.gethostname()}~{os.getpid()}~"


def _writer_is_gone(name: str) -> bool:
    host, _, rest = name.partition("~")
    pid_text = rest.partition("~")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another host's (or an unnamed) writer: only its age can tell
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
