"""One processing path for every transport: DICOM C-STORE and DICOMweb STOW-RS both end here.

`Intake.accept` checks an object is whole and well-formed, quarantines anything that still
looks identifiable, recognises TCE manifests and teaching-file reports, makes the bytes durable
and files them; it answers only after the database commit.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import timedelta

from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName
from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from archive import quarantine
from archive.blobs import BlobStore, StoredBlob
from archive.db import Database
from archive.errors import ArchiveError
from archive.filing import (
    FilingResult,
    ManifestFacts,
    ObjectKind,
    ReceivedInstance,
    Sender,
    TeachingContent,
    file_instance,
    provisional_folder,
)
from archive.models import Instance, QuarantineState, User
from archive.trials import TRIAL_ATTRIBUTES
from archive.senders import identify
from archive.quota import QuotaExceeded, refuse_if_hard_limit_exceeded

from . import status
from .deid_check import reasons_to_quarantine
from .presentation_state import apply_saved_displays, is_presentation_state
from .tce import atfi, manifest
from .validation import MalformedObject, check_encoding, invalid_uid, read_complete, read_meta

log = logging.getLogger(__name__)

STORAGE_SOP_CLASSES = frozenset(str(cx.abstract_syntax) for cx in AllStoragePresentationContexts)
SUPPORTED_TRANSFER_SYNTAXES = frozenset(str(uid) for uid in ALL_TRANSFER_SYNTAXES)
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class Outcome:
    status: int
    comment: str = ""
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    case_id: int | None = None
    quarantined: bool = False

    @property
    def ok(self) -> bool:
        return self.status == status.SUCCESS


class Intake:
    def __init__(self, database: Database, blobs: BlobStore, wait: timedelta) -> None:
        self.database = database
        self.blobs = blobs
        self.wait = wait
        self._filing_lock = threading.Lock()  # one study's first objects may arrive on two associations

    def accept(
        self,
        encoded: bytes,
        sender: Sender,
        negotiated_sop_class: str | None = None,
        *,
        required_study: str | None = None,
    ) -> Outcome:
        """Validate, check, store and file one Part 10 object; never raises."""
        try:
            meta = read_meta(encoded)
            syntax = str(meta.get("TransferSyntaxUID", ""))
            if syntax not in SUPPORTED_TRANSFER_SYNTAXES:
                return Outcome(
                    status.REFUSED_SOP_CLASS_NOT_SUPPORTED, f"transfer syntax {syntax or '(none)'} is not supported",
                    str(meta.get("MediaStorageSOPClassUID", "")), str(meta.get("MediaStorageSOPInstanceUID", "")),
                )
            check_encoding(encoded, syntax)
            ds = read_complete(encoded)
            problem = check_identity(ds, negotiated_sop_class, required_study)
            if problem is not None:
                return Outcome(*problem)
            return self._accept(ds, encoded, sender)
        except MalformedObject as exc:
            return Outcome(status.ERROR_CANNOT_UNDERSTAND, str(exc))
        except (manifest.NotAManifest, atfi.NotTeachingFileInfo) as exc:
            return Outcome(status.ERROR_CANNOT_UNDERSTAND, f"broken TCE object: {exc}")
        except QuotaExceeded as exc:
            return Outcome(status.REFUSED_OUT_OF_RESOURCES, str(exc))
        except ArchiveError as exc:
            return Outcome(status.PROCESSING_FAILURE, str(exc))
        except OSError as exc:
            log.error("could not store object from %s: %s", sender.label, exc)
            return Outcome(status.REFUSED_OUT_OF_RESOURCES, f"storage failed: {exc.strerror}")
        except Exception as exc:
            log.exception("failed to file object from %s", sender.label)
            return Outcome(status.PROCESSING_FAILURE, f"archive error: {type(exc).__name__}")

    def _accept(self, ds: Dataset, encoded: bytes, sender: Sender) -> Outcome:
        ids = {"sop_class_uid": str(ds.SOPClassUID), "sop_instance_uid": str(ds.SOPInstanceUID)}
        reasons = reasons_to_quarantine(ds)
        if reasons:
            blob = self.blobs.put_bytes(encoded)
            with self.database.session() as session:
                identity = identify(session, sender)
                quarantine.hold(
                    session, sop_instance_uid=ids["sop_instance_uid"], sop_class_uid=ids["sop_class_uid"],
                    blob=blob, reasons=reasons, calling_ae=sender.calling_ae, called_ae=sender.called_ae,
                    sender_label=sender.label, sender_user_id=identity.user.id if identity.user else None,
                )
            log.warning("quarantined %s from %s: %s", ids["sop_instance_uid"], sender.label, "; ".join(reasons))
            return Outcome(status.SUCCESS, **ids, quarantined=True)
        received = describe(ds)  # parsed before storing: a broken manifest is refused whole
        with self.database.session() as session:
            refuse_if_hard_limit_exceeded(session, provisional_folder(session, sender), len(encoded))
        blob = self.blobs.put_bytes(encoded)
        result = self.file(replace(received, blob=blob), sender)
        if is_presentation_state(ds) and not result.duplicate and not result.conflict:
            with self.database.session() as session:  # a forwarded case's saved window and crop
                apply_saved_displays(session, self.blobs, result.case_id, ds, sender.label)
        return Outcome(status.SUCCESS, **ids, case_id=result.case_id)

    def file(self, received: ReceivedInstance, sender: Sender) -> FilingResult:
        with self._filing_lock:
            try:
                with self.database.session() as session:
                    return file_instance(session, received, sender, wait=self.wait)
            except IntegrityError:  # another process filed the same study or instance first
                with self.database.session() as session:
                    return file_instance(session, received, sender, wait=self.wait)


def release_from_quarantine(intake: Intake, admin_id: int, entry_id: int) -> FilingResult:
    """An admin judged a held object safe: file it as if it had just arrived, in one transaction."""
    with intake._filing_lock, intake.database.session() as session:
        admin = session.get_one(User, admin_id)
        entry = quarantine.decide(session, admin, entry_id, QuarantineState.RELEASED)
        ds = read_complete(intake.blobs.read(entry.blob_sha256))
        received = replace(describe(ds), blob=StoredBlob(entry.blob_sha256, entry.size_bytes, created=False))
        # filed as its sender's; the association's address is gone, so a registered AE's trust is not
        sender = Sender(calling_ae=entry.calling_ae, called_ae=entry.called_ae, user_id=entry.sender_user_id)
        return file_instance(session, received, sender, wait=intake.wait)


def delete_from_quarantine(intake: Intake, admin_id: int, entry_id: int) -> None:
    """Discard a held object and its bytes (unless the same bytes are filed elsewhere)."""
    with intake.database.session() as session:
        admin = session.get_one(User, admin_id)
        entry = quarantine.decide(session, admin, entry_id, QuarantineState.DELETED)
        still_used = session.scalar(select(Instance.id).where(Instance.blob_sha256 == entry.blob_sha256))
        sha256 = entry.blob_sha256
    if still_used is None:
        intake.blobs.delete(sha256)


def check_identity(
    ds: Dataset, negotiated_sop_class: str | None, required_study: str | None = None
) -> tuple[int, str, str, str] | None:
    """(status, comment, SOP class, SOP instance) of a refusal, or None when the object may proceed."""
    problem = _identity_problem(ds, negotiated_sop_class, required_study)
    if problem is None:
        return None
    return problem[0], problem[1], str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", ""))


def _identity_problem(
    ds: Dataset, negotiated_sop_class: str | None, required_study: str | None
) -> tuple[int, str] | None:
    missing = [keyword for keyword in REQUIRED_UIDS if not ds.get(keyword)]
    if missing:
        return status.ERROR_CANNOT_UNDERSTAND, f"missing {', '.join(missing)}"
    if (bad := invalid_uid(ds)) is not None:
        return status.ERROR_CANNOT_UNDERSTAND, f"{bad} is not a valid UID (PS3.5 9.1)"
    if required_study and str(ds.StudyInstanceUID) != required_study:
        return status.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS, "Study Instance UID differs from the URL"
    sop_class = str(ds.SOPClassUID)
    if sop_class not in STORAGE_SOP_CLASSES:
        return status.REFUSED_SOP_CLASS_NOT_SUPPORTED, f"SOP class {sop_class} is not a storage class"
    if negotiated_sop_class and sop_class != negotiated_sop_class:
        return (
            status.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS,
            f"SOP class {sop_class} differs from {negotiated_sop_class}",
        )
    meta_class = ds.file_meta.get("MediaStorageSOPClassUID")
    if meta_class and str(meta_class) != sop_class:
        return status.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS, f"file meta SOP class {meta_class} differs"
    meta_instance = ds.file_meta.get("MediaStorageSOPInstanceUID")
    if meta_instance and str(meta_instance) != str(ds.SOPInstanceUID):
        return status.ERROR_DATASET_DOES_NOT_MATCH_SOP_CLASS, "file meta SOP Instance UID differs"
    return None


NOT_STORED_YET = StoredBlob("", 0, False)


def describe(ds: Dataset, blob: StoredBlob = NOT_STORED_YET) -> ReceivedInstance:
    """The archive's view of a header; identifiers beyond UIDs are never copied."""
    kind, facts, teaching = _classify(ds)
    procedure = ds.get("ProcedureCodeSequence") or []
    weight = ds.get("PatientWeight")
    return ReceivedInstance(
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
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
        kind=kind,
        manifest=facts,
        teaching=teaching,
        trial=trial_facts(ds),
    )


def trial_facts(ds: Dataset) -> dict[str, str]:
    """The Clinical Trial Subject and Study attributes an export manager wrote (pseudonyms only)."""
    facts = {name: str(ds.get(keyword, "") or "").strip() for name, keyword in TRIAL_ATTRIBUTES.items()}
    if not facts["protocol_id"] and not facts["subject_id"]:
        return {}
    return {name: value for name, value in facts.items() if value}


def _classify(ds: Dataset) -> tuple[ObjectKind, ManifestFacts | None, TeachingContent | None]:
    if manifest.is_manifest(ds):
        m = manifest.parse_manifest(ds)
        facts = ManifestFacts(
            references=tuple(r.sop_instance_uid for r in m.references),
            purpose=m.purpose, description=m.description, observer_name=m.observer_name,
            delay_reason=m.delay_reason,
        )
        return ObjectKind.MANIFEST, facts, None
    if atfi.is_teaching_file_info(ds):
        info = atfi.parse_teaching_file_info(ds)
        extra = {
            name: value
            for name, value in (
                ("category", info.category), ("level", info.level), ("organ_system", info.organ_system),
                ("pathology", info.pathology), ("anatomy", info.anatomy), ("modality", info.modality),
                ("affiliation", info.affiliation), ("contact", info.contact),
                ("diagnosis_confirmed", "" if info.diagnosis_confirmed is None else ("yes" if info.diagnosis_confirmed else "no")),
            )
            if value
        }
        content = TeachingContent(
            title=info.abstract, history=info.history, findings=info.findings,
            differential=info.differential, diagnosis=info.diagnosis, discussion=info.discussion,
            keywords=tuple(info.keywords), codes=tuple(info.codes),
            author_name=display_name(info.author_name), author_gmc=info.author_gmc, extra=extra,
        )
        return ObjectKind.TEACHING, None, content
    return ObjectKind.IMAGE, None, None


def display_name(name: str) -> str:
    """'Jones^Ann^^Dr' as 'Dr Ann Jones'; other text unchanged."""
    if "^" not in name:
        return name.strip()
    person = PersonName(name)
    parts = (person.name_prefix, person.given_name, person.middle_name, person.family_name)
    return " ".join(p for p in parts if p)


def _int_or_none(value: object) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
