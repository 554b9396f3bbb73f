"""Filing received DICOM objects into cases: the rules the receiver calls, free of DICOM networking."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .blobs import StoredBlob
from .db import mark_case_changed
from .folders import personal_folder, unclaimed_inbox
from .models import AeBinding, Case, Folder, Instance, Series, Study, User


@dataclass(frozen=True)
class ReceivedInstance:
    """What the archive needs to know about one stored object; the receiver fills it from the header."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob: StoredBlob
    instance_number: int | None = None
    series_number: int | None = None
    modality: str = ""
    body_part: str = ""
    study_description: str = ""
    series_description: str = ""
    procedure_code: str = ""
    study_date: str = ""
    patient_age: str = ""
    patient_sex: str = ""
    patient_weight_kg: float | None = None


@dataclass(frozen=True)
class FilingResult:
    case_id: int
    instance_id: int
    duplicate: bool  # the same SOP Instance UID with the same content was already stored
    conflict: bool = False  # the same SOP Instance UID arrived with different content


def destination_for_calling_ae(session: Session, calling_ae: str) -> Folder:
    """The folder bound to the calling AE, else its user's personal folder, else the unclaimed inbox."""
    binding = session.get(AeBinding, calling_ae.strip())
    if binding is not None and binding.folder_id is not None:
        return session.get_one(Folder, binding.folder_id)
    if binding is not None and binding.user_id is not None:
        return personal_folder(session, session.get_one(User, binding.user_id))
    return unclaimed_inbox(session)


def file_instance(session: Session, received: ReceivedInstance, calling_ae: str) -> FilingResult:
    """Record a durable blob as an instance; its study's case is created on the study's first instance."""
    sender = f"ae:{calling_ae}"
    existing = session.scalar(select(Instance).where(Instance.sop_instance_uid == received.sop_instance_uid))
    if existing is not None:
        case_id = existing.series.study.case_id
        if existing.blob_sha256 == received.blob.sha256:
            return FilingResult(case_id, existing.id, duplicate=True)
        # Kept (the blob is durable and named here) and flagged for an admin to resolve.
        audit.record(
            session, sender, "instance.conflict", "instance", existing.id,
            sop_instance_uid=received.sop_instance_uid,
            stored_sha256=existing.blob_sha256, received_sha256=received.blob.sha256,
        )
        return FilingResult(case_id, existing.id, duplicate=False, conflict=True)

    study = session.scalar(select(Study).where(Study.study_instance_uid == received.study_instance_uid))
    if study is None:
        study = _new_case_with_study(session, received, calling_ae)
    series = session.scalar(
        select(Series).where(Series.series_instance_uid == received.series_instance_uid)
    )
    if series is None:
        series = Series(
            study=study,
            series_instance_uid=received.series_instance_uid,
            series_number=received.series_number,
            modality=received.modality,
            body_part=received.body_part,
            description=received.series_description,
        )
        session.add(series)
    instance = Instance(
        series=series,
        sop_instance_uid=received.sop_instance_uid,
        sop_class_uid=received.sop_class_uid,
        transfer_syntax_uid=received.transfer_syntax_uid,
        instance_number=received.instance_number,
        size_bytes=received.blob.size,
        blob_sha256=received.blob.sha256,
    )
    session.add(instance)
    session.flush()
    audit.record(
        session, sender, "instance.stored", "instance", instance.id,
        case_id=study.case_id, sop_instance_uid=received.sop_instance_uid, sha256=received.blob.sha256,
    )
    mark_case_changed(session, study.case_id)
    return FilingResult(study.case_id, instance.id, duplicate=False)


def _new_case_with_study(session: Session, received: ReceivedInstance, calling_ae: str) -> Study:
    folder = destination_for_calling_ae(session, calling_ae)
    title = received.study_description or f"{received.modality or 'DICOM'} study {received.study_date}".strip()
    case = Case(folder_id=folder.id, title=title, needs_details=True)
    study = Study(
        case=case,
        study_instance_uid=received.study_instance_uid,
        study_date=received.study_date,
        description=received.study_description,
        procedure_code=received.procedure_code,
        patient_age=received.patient_age,
        patient_sex=received.patient_sex,
        patient_weight_kg=received.patient_weight_kg,
    )
    session.add_all([case, study])
    session.flush()
    audit.record(session, f"ae:{calling_ae}", "case.created", "case", case.id, folder_id=folder.id)
    return study
