"""Content-addressed blob store: identical content is stored once, and a blob is durable before use.

Layout: ``ROOT/sha256/ab/cd/abcd...``. Writes go to a temp file in the same directory tree,
are fsynced, then atomically renamed into place and the directory fsynced, so a crash leaves
either the whole blob or nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    created: bool  # False when identical content was already stored


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)

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
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp")
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

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
