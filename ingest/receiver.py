"""The archive's DICOM receiver: a pynetdicom SCP answering C-ECHO and C-STORE.

The handler only adapts DICOM to the domain: it checks the object is whole, makes the bytes
durable in the blob store, files them with `archive.filing`, and answers Success only after
the database commit. Every failure gets a failure status with an Error Comment, and nothing
of a refused object is recorded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy.exc import IntegrityError

from archive.blobs import BlobStore
from archive.db import Database
from archive.errors import ArchiveError
from archive.filing import FilingResult, ReceivedInstance, file_instance

from . import status
from .validation import MalformedObject, read_complete

log = logging.getLogger(__name__)

STORAGE_SOP_CLASSES = frozenset(str(cx.abstract_syntax) for cx in AllStoragePresentationContexts)
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class ReceiverConfig:
    ae_title: str = "CASEBANK"
    host: str = "0.0.0.0"
    port: int = 11112


class Receiver:
    def __init__(self, database: Database, blobs: BlobStore, config: ReceiverConfig) -> None:
        self.database = database
        self.blobs = blobs
        self.config = config
        self._filing_lock = threading.Lock()  # one study's first instances may arrive on two associations
        self._server: ThreadedAssociationServer | None = None

    def application_entity(self) -> AE:
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = 0  # no limit: fewer PDUs for large images
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, list(ALL_TRANSFER_SYNTAXES))
        return ae

    def start(self) -> ThreadedAssociationServer:
        handlers = [(evt.EVT_C_ECHO, self.handle_echo), (evt.EVT_C_STORE, self.handle_store)]
        ae = self.application_entity()
        self._server = ae.start_server(
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
        calling_ae = event.assoc.requestor.ae_title.strip()
        context: PresentationContext = event.context
        try:
            encoded = event.encoded_dataset(include_meta=True)
            ds = read_complete(encoded)
            problem = _check_identity(ds, str(context.abstract_syntax))
            if problem is not None:
                code, comment = problem
                log.warning("refused object from %s: %s", calling_ae, comment)
                return status.status(code, comment)
            blob = self.blobs.put_bytes(encoded)
            result = self._file(ds, blob, context, calling_ae)
        except MalformedObject as exc:
            log.warning("refused malformed object from %s: %s", calling_ae, exc)
            return status.status(status.ERROR_CANNOT_UNDERSTAND, str(exc))
        except ArchiveError as exc:
            log.warning("refused object from %s: %s", calling_ae, exc)
            return status.status(status.PROCESSING_FAILURE, str(exc))
        except OSError as exc:
            log.error("could not store object from %s: %s", calling_ae, exc)
            return status.status(status.REFUSED_OUT_OF_RESOURCES, f"storage failed: {exc.strerror}")
        except Exception as exc:
            log.exception("failed to file object from %s", calling_ae)
            return status.status(status.PROCESSING_FAILURE, f"archive error: {type(exc).__name__}")
        log.info(
            "stored %s from %s into case %d%s", ds.SOPInstanceUID, calling_ae, result.case_id,
            " (duplicate)" if result.duplicate else "",
        )
        return status.status(status.SUCCESS)

    def _file(self, ds: Dataset, blob, context: PresentationContext, calling_ae: str) -> FilingResult:  # type: ignore[no-untyped-def]
        received = received_instance(ds, blob, str(ds.file_meta.TransferSyntaxUID))
        with self._filing_lock:
            try:
                with self.database.session() as session:
                    return file_instance(session, received, calling_ae)
            except IntegrityError:  # another process filed the same study or instance first
                with self.database.session() as session:
                    return file_instance(session, received, calling_ae)


def _check_identity(ds: Dataset, negotiated_sop_class: str) -> tuple[int, str] | None:
    missing = [keyword for keyword in REQUIRED_UIDS if not ds.get(keyword)]
    if missing:
        return status.ERROR_CANNOT_UNDERSTAND, f"missing {', '.join(missing)}"
    sop_class = str(ds.SOPClassUID)
    if sop_class not in STORAGE_SOP_CLASSES:
        return status.REFUSED_SOP_CLASS_NOT_SUPPORTED, f"SOP class {sop_class} is not a storage class"
    if sop_class != negotiated_sop_class:
        return (
            status.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS,
            f"SOP class {sop_class} differs from {negotiated_sop_class}",
        )
    return None


def received_instance(ds: Dataset, blob, transfer_syntax_uid: str) -> ReceivedInstance:  # type: ignore[no-untyped-def]
    """The archive's view of a header; identifiers beyond UIDs are never copied."""
    procedure = ds.get("ProcedureCodeSequence") or []
    weight = ds.get("PatientWeight")
    return ReceivedInstance(
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=transfer_syntax_uid,
        blob=blob,
        instance_number=_int_or_none(ds.get("InstanceNumber")),
        series_number=_int_or_none(ds.get("SeriesNumber")),
        modality=str(ds.get("Modality", "") or ""),
        body_part=str(ds.get("BodyPartExamined", "") or ""),
        study_description=str(ds.get("StudyDescription", "") or ""),
        series_description=str(ds.get("SeriesDescription", "") or ""),
        procedure_code=str(procedure[0].get("CodeValue", "")) if procedure else "",
        study_date=str(ds.get("StudyDate", "") or ""),
        patient_age=str(ds.get("PatientAge", "") or ""),
        patient_sex=str(ds.get("PatientSex", "") or ""),
        patient_weight_kg=float(weight) if weight not in (None, "") else None,
    )


def _int_or_none(value: object) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
