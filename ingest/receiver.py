"""The archive's DICOM receiver: a pynetdicom SCP answering C-ECHO and C-STORE.

The handlers only adapt DICOM to `ingest.intake`, which answers Success only after the object
is durable and filed. Every failure gets a failure status with an Error Comment.

The door itself is guarded here, below the handlers, because pynetdicom would otherwise buffer
whatever a peer sends: it binds to one address, serves a bounded number of associations, drops
silent ones, refuses unknown calling AEs (when asked to), speaks TLS (when given a certificate)
and stops keeping the bytes of an object once it passes the size limit.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.acse import ACSE
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import Verification
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from archive.filing import Sender
from archive.senders import is_known_ae

from . import status
from .intake import Intake

log = logging.getLogger(__name__)

# The largest P-DATA PDU we tell peers they may send. pynetdicom reads a whole PDU into memory
# before looking at it, so "no limit" (0) would let one PDU be as large as the object.
MAX_PDU_BYTES = 1 << 20
# A PDU longer than this breaks the length we announced; the connection is dropped unread.
PDU_READ_CAP = 2 * MAX_PDU_BYTES + (64 << 10)

# A-ASSOCIATE-RJ: rejected-permanent, DICOM UL service-user, calling AE title not recognised.
REJECT_CALLING_AE = (0x01, 0x01, 0x03)


@dataclass(frozen=True)
class ReceiverConfig:
    ae_title: str = "CASEBANK"
    host: str = "127.0.0.1"
    port: int = 11112
    max_associations: int = 32
    idle_timeout: float = 60.0  # seconds of silence before an association (or a bare connection) is dropped
    max_object_bytes: int = 1 << 30
    known_aes_only: bool = False
    ssl_context: ssl.SSLContext | None = None


def server_tls_context(cert: str, key: str, ca: str | None = None) -> ssl.SSLContext:
    """TLS for the DICOM port; with a CA bundle, clients must present a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if ca:
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def oversize_comment(size: int, limit: int) -> str:
    """Fits the 64 characters of an Error Comment (LO) for sizes up to 10 digits."""
    return f"{size} bytes > limit {limit} (CASEBANK_MAX_OBJECT_BYTES)"


class Receiver:
    def __init__(self, intake: Intake, config: ReceiverConfig) -> None:
        self.intake = intake
        self.config = config
        self._server: _DoorServer | None = None

    def application_entity(self) -> AE:
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = MAX_PDU_BYTES
        ae.require_called_aet = False  # other called AE titles may be bound to folders
        ae.maximum_associations = self.config.max_associations
        # One idle limit for every wait: the A-ASSOCIATE-RQ after connecting, and silence afterwards.
        ae.acse_timeout = self.config.idle_timeout
        ae.network_timeout = self.config.idle_timeout
        ae.dimse_timeout = self.config.idle_timeout
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, list(ALL_TRANSFER_SYNTAXES))
        return ae

    @property
    def port(self) -> int:
        """The bound port (differs from the configured one when that was 0)."""
        if self._server is None:
            return self.config.port
        return int(self._server.server_address[1])

    def start(self) -> ThreadedAssociationServer:
        handlers = [(evt.EVT_C_ECHO, self.handle_echo), (evt.EVT_C_STORE, self.handle_store)]
        ae = self.application_entity()
        # What AE.start_server does, with our server and request handler classes (it takes neither).
        server = ae.make_server(
            (self.config.host, self.config.port), ssl_context=self.config.ssl_context,
            evt_handlers=handlers, server_class=_DoorServer, request_handler=_DoorRequestHandler,
        )
        server.door = self
        ae._servers.append(server)  # server.shutdown() removes it
        name = f"AcceptorServer@{datetime.now():%Y%m%d%H%M%S}"
        threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
        self._server = server
        log.info("DICOM receiver %s listening on %s:%d%s", self.config.ae_title, self.config.host, self.port,
                 " (TLS)" if self.config.ssl_context else "")
        return server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def calling_ae_refusal(self, calling_ae: str, address: str) -> str | None:
        """Why an association is refused at the door, or None. The registry is read afresh each
        time, so `casebank ae add` takes effect without a restart."""
        if not self.config.known_aes_only:
            return None
        with self.intake.database.session() as session:
            known = is_known_ae(session, calling_ae, address)
        return None if known else f"calling AE {calling_ae!r} from {address} is not a registered AE"

    def handle_echo(self, _event: evt.Event) -> int:
        return status.SUCCESS

    def handle_store(self, event: evt.Event) -> Dataset:
        request = event.assoc.requestor.primitive  # the A-ASSOCIATE-RQ: which AE title was called
        sender = Sender(
            calling_ae=event.assoc.requestor.ae_title.strip(),
            called_ae=str(request.called_ae_title).strip() if request else self.config.ae_title,
            address=str(event.assoc.requestor.address),
        )
        oversize = _oversize_of(event)
        if oversize is not None:  # its bytes were never kept: refuse before touching the data set
            log.warning("refused object from %s: %d bytes exceeds the limit of %d bytes (CASEBANK_MAX_OBJECT_BYTES)",
                        sender.label, oversize, self.config.max_object_bytes)
            return status.status(status.REFUSED_OUT_OF_RESOURCES,
                                 oversize_comment(oversize, self.config.max_object_bytes))
        outcome = self.intake.accept(
            event.encoded_dataset(include_meta=True), sender, str(event.context.abstract_syntax)
        )
        if outcome.ok:
            log.info("stored %s from %s (case %s)", outcome.sop_instance_uid, sender.label, outcome.case_id)
        else:
            log.warning("refused object from %s: %s", sender.label, outcome.comment)
        return status.status(outcome.status, outcome.comment if not outcome.ok else None)


def _oversize_of(event: evt.Event) -> int | None:
    dimse = event.assoc.dimse
    if not isinstance(dimse, _SizeLimitedDimse):
        return None
    return dimse.oversize.pop(int(event.request.MessageID), None)


# --- pynetdicom, guarded ------------------------------------------------------------------------

class _DoorServer(ThreadedAssociationServer):
    door: Receiver

    def get_request(self) -> tuple[Any, Any]:
        """Accept without the TLS handshake: pynetdicom does it here, on the one accepting thread,
        so a single client that connects and stays silent would stop every other sender."""
        assert self.socket is not None
        client, address = self.socket.accept()
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        return client, address


class _DoorRequestHandler(RequestHandler):
    server: _DoorServer

    def handle(self) -> None:
        door = self.server.door
        self.request.settimeout(door.config.idle_timeout)  # a peer stalled mid-PDU cannot hold a thread
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (OSError, ValueError) as exc:
                log.warning("TLS handshake with %s failed: %s", self.client_address[0], exc)
                self.server.shutdown_request(self.request)
                return
        super().handle()

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        door = self.server.door
        assoc.acse = _DoorACSE(assoc, door.calling_ae_refusal)
        assoc.dimse = _SizeLimitedDimse(assoc, door.config.max_object_bytes)
        _cap_pdu_reads(assoc)
        return assoc


def _cap_pdu_reads(assoc: Association) -> None:
    """Drop the connection when a peer announces a PDU larger than we allow, before reading it."""
    sock = assoc.dul.socket
    assert sock is not None
    read = sock.recv

    def capped(nr_bytes: int) -> bytearray:
        if nr_bytes > PDU_READ_CAP:
            raise OSError(f"the peer sent a PDU of {nr_bytes} bytes; at most {MAX_PDU_BYTES} were agreed")
        return read(nr_bytes)

    sock.recv = capped  # type: ignore[method-assign]


class _DoorACSE(ACSE):
    """Refuses calling AEs the registry does not know, with A-ASSOCIATE-RJ reason 3."""

    def __init__(self, assoc: Association, refusal: Callable[[str, str], str | None]) -> None:
        super().__init__(assoc)
        self._refusal = refusal

    def _negotiate_as_acceptor(self) -> None:
        calling = str(self.requestor.primitive.calling_ae_title).strip()  # type: ignore[union-attr]
        address = str(self.requestor.address)
        try:
            reason = self._refusal(calling, address)
        except Exception:  # the registry is unreadable: refusing is safer than letting anyone in
            log.exception("could not read the AE registry for %s", calling)
            reason = "the AE registry could not be read"
        if reason is None:
            super()._negotiate_as_acceptor()
            return
        log.warning("association refused: %s", reason)
        self.send_reject(*REJECT_CALLING_AE)
        evt.trigger(self.assoc, evt.EVT_REJECTED, {})
        self.assoc.kill()


class _SizeLimitedDimse(DIMSEServiceProvider):
    """Stops keeping a C-STORE data set once it passes the limit, but still reads it to its end so
    the peer gets a status instead of a dropped connection. The sizes of refused messages are
    kept by Message ID for the C-STORE handler."""

    def __init__(self, assoc: Association, limit: int) -> None:
        super().__init__(assoc)
        self.limit = limit
        self.oversize: dict[int, int] = {}
        self._received = 0

    def receive_primitive(self, primitive: P_DATA) -> None:
        # One PDV at a time, so a data set fragment always follows its decoded command set.
        for context_id, data in primitive.presentation_data_value_list:
            single = P_DATA()
            single.presentation_data_value_list = [[context_id, self._counted(data)]]
            super().receive_primitive(single)

    def _counted(self, data: bytes) -> bytes:
        if data[0] & 0x01:  # a command fragment: a new message begins
            self._received = 0
            return data
        self._received += len(data) - 1
        if self._received <= self.limit:
            return data
        command = getattr(self.message, "command_set", None)
        message_id = getattr(command, "MessageID", None)
        if message_id is not None:
            self.oversize[int(message_id)] = self._received  # set before the last fragment is queued
        return data[:1]  # the control header alone: the fragment still ends the message if last
