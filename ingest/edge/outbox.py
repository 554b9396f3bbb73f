"""A durable outbox: every outbound object is on disk before it is sent, and leaves only when the
archive has acknowledged it. A restart picks up where the last run stopped; the archive stores a
resent object once (same SOP Instance UID, same bytes), so delivery is exactly once in effect.

How objects travel is the outbox's :class:`Transport`: DICOM C-STORE (:class:`DicomTransport`, the
edge's) or DICOMweb STOW-RS (:class:`StowTransport`, the archive forwarding a case to another
archive). Each answers a status per object in DICOM terms: 0 stored; no answer (-1) or out of
resources (A7xx) retried later with the whole queue; anything else a refusal, set aside for good."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from pydicom import dcmread
from pydicom.dataset import Dataset
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


Answer = tuple[Path, int, str]
"""One object's fate: its queued file, the DICOM status (-1: no answer) and the peer's comment."""


class Transport(Protocol):
    """Sends a batch of queued objects, answering for each in order; raises when it cannot reach
    the peer at all (the whole batch waits and is retried)."""

    label: str

    def store(self, items: Sequence[tuple[Path, Dataset]]) -> Iterator[Answer]: ...


class DicomTransport:
    """C-STORE over one association per batch, optionally over TLS."""

    def __init__(self, destination: Destination, calling_ae: str, tls: ssl.SSLContext | None = None) -> None:
        self.destination = destination
        self.calling_ae = calling_ae
        self.tls = tls
        self.label = f"{destination.ae_title}@{destination.host}:{destination.port}"

    def store(self, items: Sequence[tuple[Path, Dataset]]) -> Iterator[Answer]:
        ae = AE(ae_title=self.calling_ae)
        ae.maximum_pdu_size = 0
        pairs = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in items}
        ae.requested_contexts = [build_context(c, [t]) for c, t in sorted(pairs)][:128]
        tls_args = (self.tls, self.destination.host) if self.tls is not None else None
        assoc = ae.associate(self.destination.host, self.destination.port, ae_title=self.destination.ae_title,
                             tls_args=tls_args)
        if not assoc.is_established:
            raise ConnectionError(f"cannot associate with {self.destination.ae_title} at "
                                  f"{self.destination.host}:{self.destination.port}")
        try:
            for path, ds in items:
                response = assoc.send_c_store(ds)
                code = int(getattr(response, "Status", -1))
                yield path, code, str(getattr(response, "ErrorComment", "") or "no response")
        finally:
            assoc.release()


class StowTransport:
    """STOW-RS (PS3.18 10.5) with dicomweb-client, optionally with a bearer token. A 409 or 202
    answer names the refused instances in its Failed SOP Sequence; a 5xx or no answer is retried."""

    def __init__(self, url: str, bearer_token: str = "", timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.bearer_token = bearer_token
        self.timeout = timeout
        self.label = self.url

    def store(self, items: Sequence[tuple[Path, Dataset]]) -> Iterator[Answer]:
        import requests  # noqa: PLC0415 (the edge never needs these)
        from dicomweb_client.api import DICOMwebClient  # noqa: PLC0415

        headers = {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else None
        client = DICOMwebClient(self.url, headers=headers, timeout=self.timeout)
        failed: dict[str, int] = {}
        for chunk in _chunks(items, 50):
            try:
                report = client.store_instances([ds for _, ds in chunk])
            except requests.HTTPError as exc:
                response = exc.response
                if response is None or response.status_code >= 500 or response.status_code in (401, 403, 404, 408, 429):
                    raise ConnectionError(f"STOW-RS to {self.url} answered "
                                          f"{response.status_code if response is not None else 'nothing'}") from exc
                try:
                    report = Dataset.from_json(response.json())
                except ValueError:  # no report: the whole request was refused
                    report = Dataset()
                    failed.update({str(ds.SOPInstanceUID): 0xC000 for _, ds in chunk})
            for item in report.get("FailedSOPSequence") or ():
                failed[str(item.get("ReferencedSOPInstanceUID", ""))] = int(item.get("FailureReason", 0xC000))
            for path, ds in chunk:
                code = failed.get(str(ds.SOPInstanceUID), 0)
                yield path, code, "" if code == 0 else f"STOW-RS failure reason {code:#06x}"


def _chunks(items: Sequence[tuple[Path, Dataset]], size: int) -> Iterator[Sequence[tuple[Path, Dataset]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Outbox:
    def __init__(self, folder: Path, destination: Destination | None = None, calling_ae: str = "CASEBANK-EDGE",
                 *, transport: Transport | None = None, keep_sent_log: bool = False, name: str = "edge-outbox") -> None:
        """Send over DICOM to ``destination``, or by any ``transport``. With ``keep_sent_log`` every
        acknowledged object is recorded in ``sent.jsonl`` next to the queue (for an outbox page)."""
        if transport is None:
            if destination is None:
                raise ValueError("an outbox needs a destination or a transport")
            transport = DicomTransport(destination, calling_ae)
        self.folder = folder
        self.pending_folder = folder / "pending"
        self.pending_folder.mkdir(parents=True, exist_ok=True)
        self.destination = destination
        self.calling_ae = calling_ae
        self.transport = transport
        self.keep_sent_log = keep_sent_log
        self.sent = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
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

    def sent_log(self) -> list[dict[str, str]]:
        """What the peer acknowledged (with ``keep_sent_log``): queued file name and when."""
        path = self.folder / "sent.jsonl"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:  # a line cut short by a crash: the object is resent and logged again
                continue
        return entries

    def _log_sent(self, path: Path) -> None:
        line = json.dumps({"name": path.name, "at": datetime.now(timezone.utc).isoformat()}) + "\n"
        with open(self.folder / "sent.jsonl", "a") as log_file:
            log_file.write(line)
            log_file.flush()
            os.fsync(log_file.fileno())

    def send_batch(self, paths: list[Path], on_sent: Callable[[Path], None] | None = None) -> None:
        datasets = [(path, dcmread(io.BytesIO(path.read_bytes()))) for path in paths[:500]]
        try:
            with closing(self.transport.store(datasets)) as answers:
                for path, code, comment in answers:
                    if code == -1 or code & 0xFF00 == 0xA700:  # no answer, or out of resources: retry later
                        raise RuntimeError(f"archive answered {code:#06x} for {path.name}: {comment}")
                    if code != 0x0000:  # refused for good: set aside for a person, keep the queue moving
                        self._set_aside(path, f"archive answered {code:#06x}: {comment}")
                        continue
                    if self.keep_sent_log:
                        self._log_sent(path)  # before the file goes: a crash between resends, never forgets
                    path.unlink()
                    self.sent += 1
                    if on_sent is not None:
                        on_sent(path)
        finally:
            sync_folder(self.pending_folder)
        self.last_error = ""
