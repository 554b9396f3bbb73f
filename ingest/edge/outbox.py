"""A durable outbox: every outbound object is on disk before it is sent, and leaves only when the
archive has acknowledged it. A restart picks up where the last run stopped; the archive stores a
resent object once (same SOP Instance UID, same bytes), so delivery is exactly once in effect."""

from __future__ import annotations

import io
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.presentation import build_context

from .files import sync_folder, write_durably

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Destination:
    """A DICOM archive: AE title, host and port, written `AE@HOST:PORT`."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        ae_title, _, address = text.partition("@")
        host, _, port = address.rpartition(":")
        if not ae_title or not host or not port.isdigit():
            raise ValueError(f"archive {text!r} must look like AE@HOST:PORT")
        return cls(ae_title, host, int(port))


@dataclass(frozen=True)
class OutboxState:
    pending: int
    sent: int
    last_error: str


class Outbox:
    def __init__(self, folder: Path, destination: Destination, calling_ae: str = "CASEBANK-EDGE") -> None:
        self.pending_folder = folder / "pending"
        self.pending_folder.mkdir(parents=True, exist_ok=True)
        self.destination = destination
        self.calling_ae = calling_ae
        self.sent = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-outbox", daemon=True)
        self._sequence = int(time.time() * 1000)
        self._lock = threading.Lock()

    def put(self, encoded: bytes, sop_instance_uid: str) -> Path:
        """Queue one de-identified object; durable when this returns."""
        with self._lock:
            self._sequence += 1
            path = self.pending_folder / f"{self._sequence:016d}-{sop_instance_uid}.dcm"
        write_durably(path, encoded)
        self._wake.set()
        return path

    def staging(self, name: str) -> Path:
        """A folder to assemble a release in; nothing in it is sent until `adopt`."""
        folder = self.pending_folder.parent / "staging" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def adopt(self, staged: Path) -> int:
        """Move a staged release into the queue (each rename is atomic; a rerun finishes the rest)."""
        moved = 0
        for path in sorted(staged.glob("*.dcm")):
            with self._lock:
                self._sequence += 1
                target = self.pending_folder / f"{self._sequence:016d}-{path.name}"
            path.replace(target)
            moved += 1
        sync_folder(self.pending_folder)
        shutil.rmtree(staged, ignore_errors=True)
        self._wake.set()
        return moved

    def state(self) -> OutboxState:
        return OutboxState(len(self._pending()), self.sent, self.last_error)

    def refused(self) -> list[dict[str, str]]:
        """Objects the archive refused for good, with its answer; kept for a person to look at."""
        folder = self.pending_folder.parent / "refused"
        return [
            {"name": p.name, "reason": (folder / f"{p.name}.reason.txt").read_text()}
            for p in sorted(folder.glob("*.dcm"))
        ] if folder.exists() else []

    def _pending(self) -> list[Path]:
        return sorted(self.pending_folder.glob("*.dcm"))

    def _set_aside(self, path: Path, reason: str) -> None:
        refused = self.pending_folder.parent / "refused"
        refused.mkdir(exist_ok=True)
        write_durably(refused / f"{path.name}.reason.txt", reason.encode())
        path.replace(refused / path.name)
        log.error("outbox: %s refused by the archive: %s", path.name, reason)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            pending = self._pending()
            if not pending:
                self._wake.wait(5)
                self._wake.clear()
                continue
            try:
                self.send_batch(pending)
                backoff = 1.0
            except Exception as exc:  # archive down or refusing: keep everything, retry later
                self.last_error = str(exc)
                log.warning("outbox: %d object(s) wait; retry in %.0f s: %s", len(pending), backoff, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def send_batch(self, paths: list[Path], on_sent: Callable[[Path], None] | None = None) -> None:
        datasets = [(path, dcmread(io.BytesIO(path.read_bytes()))) for path in paths[:500]]
        ae = AE(ae_title=self.calling_ae)
        ae.maximum_pdu_size = 0
        pairs = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in datasets}
        ae.requested_contexts = [build_context(c, [t]) for c, t in sorted(pairs)][:128]
        assoc = ae.associate(self.destination.host, self.destination.port, ae_title=self.destination.ae_title)
        if not assoc.is_established:
            raise ConnectionError(f"cannot associate with {self.destination.ae_title} at "
                                  f"{self.destination.host}:{self.destination.port}")
        try:
            for path, ds in datasets:
                response = assoc.send_c_store(ds)
                code = int(getattr(response, "Status", -1))
                comment = str(getattr(response, "ErrorComment", "") or "no response")
                if code == -1 or code & 0xFF00 == 0xA700:  # no answer, or out of resources: retry later
                    raise RuntimeError(f"archive answered {code:#06x} for {path.name}: {comment}")
                if code != 0x0000:  # refused for good: set aside for a person, keep the queue moving
                    self._set_aside(path, f"archive answered {code:#06x}: {comment}")
                    continue
                path.unlink()
                self.sent += 1
                if on_sent is not None:
                    on_sent(path)
        finally:
            assoc.release()
            sync_folder(self.pending_folder)
        self.last_error = ""
