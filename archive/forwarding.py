"""Forwarding a case to another archive, "like forwarding an email".

An admin configures destinations (DICOM: AE, host, port, optional TLS; or a DICOMweb STOW-RS URL
with a bearer token). An editor forwards a case: it is rebuilt as a TCE submission
(:mod:`export.tce_builder`), every object goes through the door check again, and the lot is
queued in the destination's durable outbox (the edge's :class:`ingest.edge.outbox.Outbox`, under
``<data>/outbox/<destination>/``) in one atomic step. The outbox sends with retry while the archive
serves; a restart resumes what is pending. Per object the outbox page tells waiting, sent (the
outbox's ``sent.jsonl``) or refused (its ``refused/`` folder, with the peer's answer; final).
Which objects each forward queued is kept in ``forwards.jsonl`` next to the queue.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import ssl
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.deid_check import reasons_to_quarantine
from ingest.edge.files import write_durably
from ingest.edge.outbox import Destination, DicomTransport, Outbox, StowTransport, Transport

from . import audit
from .blobs import BlobStore
from .errors import InvalidInput, NotFound, NotPermitted
from .folders import not_found, require
from .models import Case, FolderKind, ForwardDestination, User
from .senders import AE_TITLE

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KINDS = ("dicom", "stowrs")


class ForwardRefused(InvalidInput):
    """An object of the case failed the door check; nothing was queued. ``reasons`` per object."""

    def __init__(self, message: str, reasons: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.reasons = reasons


# --- Destinations (admins) -------------------------------------------------------------------

def _require_admin(actor: User | str) -> None:
    if isinstance(actor, User) and not actor.is_admin:
        raise NotPermitted("only an admin may configure forwarding destinations")


def add_destination(
    session: Session, actor: User | str, name: str, *, dicom: str | None = None, tls: bool = False,
    stow_url: str | None = None, token: str = "",
) -> ForwardDestination:
    """A new destination: ``dicom`` as ``AE@HOST:PORT``, or ``stow_url`` (``.../dicomweb``)."""
    _require_admin(actor)
    name = name.strip()
    if not NAME.match(name):
        raise InvalidInput(f"destination name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if (dicom is None) == (stow_url is None):
        raise InvalidInput("a destination is either DICOM (AE@HOST:PORT) or STOW-RS (a URL), not both or neither")
    if session.scalar(select(ForwardDestination).where(ForwardDestination.name == name)) is not None:
        raise InvalidInput(f"destination {name} exists already")
    if dicom is not None:
        try:
            parsed = Destination.parse(dicom.strip())
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        if not AE_TITLE.match(parsed.ae_title):
            raise InvalidInput(f"AE title {parsed.ae_title!r} must be 1-16 characters with no backslash")
        destination = ForwardDestination(name=name, kind="dicom", ae_title=parsed.ae_title, host=parsed.host,
                                         port=parsed.port, tls=tls)
    else:
        url = (stow_url or "").strip().rstrip("/")
        if not re.match(r"^https?://[^\s/]+", url):
            raise InvalidInput(f"STOW-RS URL {url!r} must start with http:// or https://")
        destination = ForwardDestination(name=name, kind="stowrs", url=url, bearer_token=token.strip())
    session.add(destination)
    session.flush()
    audit.record(session, actor, "destination.added", "destination", name, kind=destination.kind,
                 target=describe(destination))
    return destination


def remove_destination(session: Session, actor: User | str, name: str) -> None:
    """Forget a destination; whatever waits in its outbox stays on disk (and is sent if it is added again)."""
    _require_admin(actor)
    destination = get_destination(session, name)
    session.delete(destination)
    audit.record(session, actor, "destination.removed", "destination", name)


def get_destination(session: Session, name: str) -> ForwardDestination:
    destination = session.scalar(select(ForwardDestination).where(ForwardDestination.name == name.strip()))
    if destination is None:
        raise NotFound(f"destination {name!r} does not exist")
    return destination


def list_destinations(session: Session) -> list[ForwardDestination]:
    return list(session.scalars(select(ForwardDestination).order_by(ForwardDestination.name)))


def describe(destination: ForwardDestination) -> str:
    """``AE@HOST:PORT`` (``+ TLS``) or the STOW-RS URL; never the token."""
    if destination.kind == "dicom":
        return f"{destination.ae_title}@{destination.host}:{destination.port}" + (" (TLS)" if destination.tls else "")
    return destination.url


# --- Forwarding a case ----------------------------------------------------------------------

def _is_research(case: Case) -> bool:
    return case.folder.project_id is not None or case.folder.kind in (FolderKind.PROJECT, FolderKind.HOLD)


def forward_case(
    session: Session, blobs: BlobStore, actor: User, case_id: int, destination_name: str,
    strip_sender: bool = False, *, forwarder: Forwarder,
) -> list[dict[str, str]]:
    """Queue the case, rebuilt as a TCE submission, for ``destination_name``; returns what was
    queued (SOP Instance UID, class, what it is). Needs the edit right; research cases are never
    forwarded; any object failing the door check refuses the whole forward, with its reasons."""
    from export.tce_builder import build_case_export, encode, sop_summary  # noqa: PLC0415 (export imports archive)

    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(not_found(f"case {case_id}"))
    require(session, actor, case.folder, "edit", subject=f"case {case_id}")
    if _is_research(case):
        raise NotPermitted(f"case {case_id} belongs to a research project; project cases are not forwarded")
    destination = get_destination(session, destination_name)
    objects = build_case_export(session, blobs, case, strip_sender=strip_sender)
    refused = {str(ds.SOPInstanceUID): reasons for ds in objects if (reasons := reasons_to_quarantine(ds))}
    if refused:
        first = next(iter(refused.items()))
        raise ForwardRefused(
            f"case {case_id} was not forwarded: {len(refused)} object(s) fail the de-identification check, "
            f"e.g. {first[0]}: {'; '.join(first[1][:3])}", refused,
        )
    summary = sop_summary(objects)
    forwarder.queue(destination, case_id, actor.username, [(str(ds.SOPInstanceUID), encode(ds)) for ds in objects],
                    summary, strip_sender=strip_sender)
    audit.record(session, actor, "case.forwarded", "case", case_id, destination=destination.name,
                 target=describe(destination), objects=len(objects), strip_sender=strip_sender)
    return summary


# --- Outboxes -------------------------------------------------------------------------------

@dataclass
class ObjectState:
    sop_instance_uid: str
    what: str
    state: str  # waiting, sent, refused
    reason: str = ""
    at: str = ""


@dataclass
class ForwardState:
    case_id: int
    by: str
    at: str
    strip_sender: bool
    objects: list[ObjectState] = field(default_factory=list)


@dataclass
class DestinationState:
    name: str
    kind: str
    target: str
    waiting: int
    sent: int
    refused: int
    last_error: str
    forwards: list[ForwardState]


def _ledger(path: Path) -> list[dict]:  # type: ignore[type-arg]
    records = []
    for line in (path.read_text().splitlines() if path.exists() else ()):
        try:
            records.append(json.loads(line))
        except ValueError:  # a line cut short by a crash
            continue
    return records


def _sop_of(file_name: str) -> str:
    """The SOP Instance UID in a queued file's name (``SEQUENCE-POSITION-UID.dcm``)."""
    return file_name.removesuffix(".dcm").rsplit("-", 1)[-1]


class Forwarder:
    """One outbox per destination under ``<data>/outbox/<name>/``; sending while started."""

    def __init__(self, folder: Path, calling_ae: str) -> None:
        self.folder = folder
        self.calling_ae = calling_ae
        self._outboxes: dict[str, tuple[tuple[object, ...], Outbox]] = {}
        self._lock = threading.Lock()
        self._started = False

    def _transport(self, destination: ForwardDestination) -> Transport:
        if destination.kind == "dicom":
            tls = ssl.create_default_context() if destination.tls else None
            target = Destination(destination.ae_title, destination.host, int(destination.port or 104))
            return DicomTransport(target, self.calling_ae, tls)
        return StowTransport(destination.url, destination.bearer_token)

    def outbox(self, destination: ForwardDestination) -> Outbox:
        """The destination's outbox, made (and started, when the forwarder runs) on first use; a
        destination whose address changed gets a new one over the same folder."""
        settings = (destination.kind, destination.ae_title, destination.host, destination.port, destination.tls,
                    destination.url, destination.bearer_token)
        with self._lock:
            known = self._outboxes.get(destination.name)
            if known is not None and known[0] == settings:
                return known[1]
            if known is not None and known[1]._thread.is_alive():  # noqa: SLF001
                known[1].stop()
            outbox = Outbox(self.folder / destination.name, transport=self._transport(destination),
                            keep_sent_log=True, name=f"forward-{destination.name}")
            self._finish_adoptions(outbox)
            self._outboxes[destination.name] = (settings, outbox)
            if self._started:
                outbox.start()
            return outbox

    def queue(self, destination: ForwardDestination, case_id: int, by: str, encoded: list[tuple[str, bytes]],
              summary: list[dict[str, str]], *, strip_sender: bool) -> None:
        outbox = self.outbox(destination)
        batch = f"case-{case_id}-{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S%f')}"
        record = {"case_id": case_id, "by": by, "at": datetime.now(timezone.utc).isoformat(),
                  "strip_sender": strip_sender, "batch": batch, "objects": summary}
        staged = outbox.staging(batch)
        for position, (sop_uid, data) in enumerate(encoded):  # adopted in name order: the order to send in
            write_durably(staged / f"{position:05d}-{sop_uid}.dcm", data)
        ledger = outbox.folder / "forwards.jsonl"
        with open(ledger, "a") as f:  # from here the forward happened: a restart finishes the adoption
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        outbox.adopt(staged)

    def _finish_adoptions(self, outbox: Outbox) -> None:
        """Staged forwards a crash interrupted: adopted if the ledger has them, else discarded
        (the forward answered with an error and was never recorded)."""
        staging = outbox.folder / "staging"
        if not staging.exists():
            return
        recorded = {record.get("batch") for record in _ledger(outbox.folder / "forwards.jsonl")}
        for staged in sorted(p for p in staging.iterdir() if p.is_dir()):
            if staged.name in recorded:
                outbox.adopt(staged)
            else:
                shutil.rmtree(staged, ignore_errors=True)

    def start(self, destinations: list[ForwardDestination]) -> None:
        """Start every destination's outbox: what a previous run left pending is sent now."""
        with self._lock:
            self._started = True
            running = list(self._outboxes.values())
        for _, outbox in running:
            outbox.start()
        for destination in destinations:
            self.outbox(destination)

    def stop(self) -> None:
        with self._lock:
            self._started = False
            outboxes = [outbox for _, outbox in self._outboxes.values()]
            self._outboxes.clear()
        for outbox in outboxes:
            if outbox._thread.is_alive():  # noqa: SLF001
                outbox.stop()

    def forget(self, name: str) -> None:
        with self._lock:
            known = self._outboxes.pop(name, None)
        if known is not None and known[1]._thread.is_alive():  # noqa: SLF001
            known[1].stop()

    def state(self, destination: ForwardDestination) -> DestinationState:
        outbox = self.outbox(destination)
        waiting = {_sop_of(p.name) for p in outbox.pending_folder.glob("*.dcm")}
        refused = {_sop_of(r["name"]): r["reason"] for r in outbox.refused()}
        sent = {_sop_of(e["name"]): e.get("at", "") for e in outbox.sent_log()}
        forwards = []
        for record in _ledger(outbox.folder / "forwards.jsonl"):
            forward = ForwardState(record["case_id"], record["by"], record["at"], bool(record.get("strip_sender")))
            for item in record["objects"]:
                uid = item["sop_instance_uid"]
                if uid in waiting:
                    state = ObjectState(uid, item["what"], "waiting")
                elif uid in refused:
                    state = ObjectState(uid, item["what"], "refused", reason=refused[uid])
                elif uid in sent:
                    state = ObjectState(uid, item["what"], "sent", at=sent[uid])
                else:  # staged, not yet in the queue
                    state = ObjectState(uid, item["what"], "waiting")
                forward.objects.append(state)
            forwards.append(forward)
        forwards.reverse()  # newest first
        return DestinationState(destination.name, destination.kind, describe(destination), len(waiting), len(sent),
                                len(refused), outbox.last_error, forwards)
