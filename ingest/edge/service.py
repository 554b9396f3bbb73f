"""`casebank edge`: the export manager's DICOM receiver, selections and outbox in one process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from ..deid import Profile
from ..status import ERROR_CANNOT_UNDERSTAND, PROCESSING_FAILURE, SUCCESS, status
from ..validation import MalformedObject, read_complete
from .outbox import Destination, Outbox
from .pacs import Pacs
from .selections import ExportManager
from .users import EdgeUsers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeConfig:
    """One edge's settings.

    ``auto_release_template_cleaning``: a selection from the PACS whose only changed pixels lie
    in rectangles of a device template (``ingest/deid/data/pixel_regions.json``) or outside the
    ultrasound scan area leaves without a person. Off by default: every selection whose pixels
    change waits for a person on the preview page. Uncertain detection always waits.
    """

    data: Path
    archive: Destination
    ae_title: str = "CASEBANK-EDGE"
    host: str = "0.0.0.0"
    port: int = 11113
    profile: Profile | None = None
    pacs: Destination | None = None  # the local PACS the edge page queries (C-FIND) and fetches from (C-GET)
    auto_release_template_cleaning: bool = False


class Edge:
    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.outbox = Outbox(config.data / "outbox", config.archive, calling_ae=config.ae_title)
        self.manager = ExportManager(config.data, self.outbox, config.profile or Profile.default(),
                                     auto_release_template_cleaning=config.auto_release_template_cleaning)
        self.users = EdgeUsers(config.data / "users.json")
        self.pacs = Pacs(config.pacs, calling_ae=config.ae_title) if config.pacs else None
        self._server = None

    def start(self) -> None:
        self.manager.resume()
        self.outbox.start()
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = 0
        ae.require_called_aet = False
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, list(ALL_TRANSFER_SYNTAXES))
        handlers = [(evt.EVT_C_ECHO, lambda _e: SUCCESS), (evt.EVT_C_STORE, self._on_store)]
        self._server = ae.start_server((self.config.host, self.config.port), block=False, evt_handlers=handlers)
        log.info("edge %s listening on %s:%d, forwarding to %s", self.config.ae_title, self.config.host,
                 self.config.port, self.config.archive)

    def projects(self) -> list[str]:
        folder = self.config.data / "projects"
        return sorted(p.name for p in folder.iterdir() if (p / "secret").exists()) if folder.is_dir() else []

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        self.outbox.stop()

    def _on_store(self, event: evt.Event):  # type: ignore[no-untyped-def]
        try:
            encoded = event.encoded_dataset(include_meta=True)
            self.manager.receive(encoded, read_complete(encoded))
        except MalformedObject as exc:
            return status(ERROR_CANNOT_UNDERSTAND, str(exc))
        except Exception as exc:
            log.exception("edge could not keep an object")
            return status(PROCESSING_FAILURE, f"edge error: {type(exc).__name__}")
        return status(SUCCESS)
