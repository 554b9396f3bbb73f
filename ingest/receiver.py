"""The archive's DICOM receiver: a pynetdicom SCP answering C-ECHO and C-STORE.

The handlers only adapt DICOM to `ingest.intake`, which answers Success only after the object
is durable and filed. Every failure gets a failure status with an Error Comment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from archive.filing import Sender

from . import status
from .intake import Intake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiverConfig:
    ae_title: str = "CASEBANK"
    host: str = "0.0.0.0"
    port: int = 11112


class Receiver:
    def __init__(self, intake: Intake, config: ReceiverConfig) -> None:
        self.intake = intake
        self.config = config
        self._server: ThreadedAssociationServer | None = None

    def application_entity(self) -> AE:
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = 0  # no limit: fewer PDUs for large images
        ae.require_called_aet = False  # other called AE titles may be bound to folders
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, list(ALL_TRANSFER_SYNTAXES))
        return ae

    def start(self) -> ThreadedAssociationServer:
        handlers = [(evt.EVT_C_ECHO, self.handle_echo), (evt.EVT_C_STORE, self.handle_store)]
        self._server = self.application_entity().start_server(
            (self.config.host, self.config.port), block=False, evt_handlers=handlers
        )
        log.info("DICOM receiver %s listening on %s:%d", self.config.ae_title, self.config.host, self.config.port)
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def handle_echo(self, _event: evt.Event) -> int:
        return status.SUCCESS

    def handle_store(self, event: evt.Event) -> Dataset:
        request = event.assoc.requestor.primitive  # the A-ASSOCIATE-RQ: which AE title was called
        sender = Sender(
            calling_ae=event.assoc.requestor.ae_title.strip(),
            called_ae=str(request.called_ae_title).strip() if request else self.config.ae_title,
        )
        outcome = self.intake.accept(
            event.encoded_dataset(include_meta=True), sender, str(event.context.abstract_syntax)
        )
        if outcome.ok:
            log.info("stored %s from %s (case %s)", outcome.sop_instance_uid, sender.label, outcome.case_id)
        else:
            log.warning("refused object from %s: %s", sender.label, outcome.comment)
        return status.status(outcome.status, outcome.comment if not outcome.ok else None)
