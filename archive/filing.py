"""Filing received DICOM objects: the rules the receivers call, free of DICOM networking.

Every object is recorded at once (so an acknowledged object is never lost) in a case keyed by
its study. Its UIDs are claims: an object joins an existing study only under `archive.sending`'s
rule, otherwise it opens a separate case of its sender. A manifest opens a `Submission`; when
every object it names has arrived, or its wait runs out, `archive.submissions` assembles the case
and routes it to its folder.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, quota, submissions, trials
from .blobs import StoredBlob
from .db import mark_case_changed
from .folders import personal_folder, unclaimed_inbox
from .models import (
    AeBinding,
    Case,
    CaseStatus,
    Folder,
    Instance,
    InstanceConflict,
    Series,
    Study,
    Submission,
    SubmissionReference,
    TeachingDocument,
    utcnow,
)
from .senders import Sender, SenderIdentity, identify
from .sending import may_join, may_send

__all__ = ["Sender", "SenderIdentity", "file_instance", "provisional_folder"]


class ObjectKind(str, enum.Enum):
    IMAGE = "image"  # and any other evidence object
    MANIFEST = "manifest"  # TCE Key Object Selection
    TEACHING = "teaching"  # TCE Additional Teaching File Information SR


@dataclass(frozen=True)
class ManifestFacts:
    references: tuple[str, ...]  # SOP Instance UIDs the manifest names
    purpose: str = "teaching"
    description: str = ""
    observer_name: str = ""
    delay_reason: str | None = None


@dataclass(frozen=True)
class TeachingContent:
    """What an ATFI report says, in the archive's terms."""

    title: str = ""
    history: str = ""
    findings: str = ""
    differential: str = ""
    diagnosis: str = ""
    discussion: str = ""
    keywords: tuple[str, ...] = ()
    codes: tuple[tuple[str, str, str], ...] = ()
    author_name: str = ""
    author_gmc: str = ""
    extra: dict[str, str] = field(default_factory=dict)


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
    kind: ObjectKind = ObjectKind.IMAGE
    manifest: ManifestFacts | None = None
    teaching: TeachingContent | None = None
    trial: dict[str, str] = field(default_factory=dict)  # Clinical Trial attributes (archive.trials.TRIAL_ATTRIBUTES)


@dataclass(frozen=True)
class FilingResult:
    case_id: int
    instance_id: int
    duplicate: bool  # the same SOP Instance UID with the same content was already stored
    conflict: bool = False  # the same SOP Instance UID arrived with different content


def provisional_folder(
    session: Session, sender: Sender, identity: SenderIdentity | None = None, trial: dict[str, str] | None = None,
) -> Folder:
    """Where a new study waits for its manifest: a research object in a hold (never a teaching
    folder); else the called AE's folder if the sender may send there, else the sender's personal
    folder, else the admin-only inbox."""
    identity = identity or identify(session, sender)
    research = trials.provisional_folder(session, trial or {}, sender.calling_ae if identity.ae_verified else "")
    if research is not None:
        return research
    binding = session.get(AeBinding, sender.called_ae.strip()) if sender.called_ae else None
    if binding is not None and binding.folder_id is not None:
        folder = session.get_one(Folder, binding.folder_id)
        if may_send(session, folder, identity, sender.calling_ae)[0]:
            return folder
    return personal_folder(session, identity.user) if identity.user is not None else unclaimed_inbox(session)


def file_instance(
    session: Session, received: ReceivedInstance, sender: Sender, *, wait: timedelta, now: datetime | None = None
) -> FilingResult:
    """Record a durable blob as an instance, then let any submission waiting for it progress."""
    now = now or utcnow()
    identity = identify(session, sender)
    existing = _joinable_instance(session, received, identity, sender)
    if existing is not None:
        return _again(session, existing, received, sender)

    study = _joinable_study(session, received, identity, sender)
    if study is None:
        study = _new_case_with_study(session, received, sender, identity)
    elif received.trial and not study.trial:
        study.trial = dict(received.trial)
    series = session.scalar(select(Series).where(
        Series.study_id == study.id, Series.series_instance_uid == received.series_instance_uid
    ))
    if series is None:
        mark_case_changed(session, study.case_id)  # a new series can add a modality or body part
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
    if received.teaching is not None:
        session.add(TeachingDocument(
            instance_id=instance.id,
            sop_instance_uid=received.sop_instance_uid,
            study_instance_uid=received.study_instance_uid,
            content=asdict(received.teaching),
        ))
    audit.record(
        session, sender.label, "instance.stored", "instance", instance.id,
        case_id=study.case_id, sop_instance_uid=received.sop_instance_uid, sha256=received.blob.sha256,
    )
    if received.manifest is not None:
        _open_submission(session, received, study.case_id, sender, identity, now + wait, now)
    quota.check_limit(session, study.case.folder)
    submissions.progress(session, received.sop_instance_uid, now)
    return FilingResult(study.case_id, instance.id, duplicate=False)


def _joinable_instance(
    session: Session, received: ReceivedInstance, identity: SenderIdentity, sender: Sender
) -> Instance | None:
    """The stored instance with this SOP Instance UID that the sender may add to, if any."""
    others = []
    for instance in session.scalars(
        select(Instance).where(Instance.sop_instance_uid == received.sop_instance_uid).order_by(Instance.id)
    ):
        if may_join(session, identity, instance.series.study, sender.calling_ae):
            return instance
        others.append(instance.series.study.case_id)
    if others:  # kept apart; an admin can see who reused whose UID
        audit.record(session, sender.label, "instance.uid_reused", "instance", received.sop_instance_uid,
                     cases=others, principal=identity.principal)
    return None


def _joinable_study(
    session: Session, received: ReceivedInstance, identity: SenderIdentity, sender: Sender
) -> Study | None:
    studies = session.scalars(
        select(Study).where(Study.study_instance_uid == received.study_instance_uid).order_by(Study.id)
    ).all()
    own = [s for s in studies if s.sender and s.sender == identity.principal]
    for study in own + [s for s in studies if s not in own]:
        if may_join(session, identity, study, sender.calling_ae):
            return study
    if studies:
        audit.record(session, sender.label, "study.uid_reused", "study", received.study_instance_uid,
                     cases=[s.case_id for s in studies], principal=identity.principal)
    return None


def _again(session: Session, existing: Instance, received: ReceivedInstance, sender: Sender) -> FilingResult:
    case_id = existing.series.study.case_id
    if existing.blob_sha256 == received.blob.sha256:
        return FilingResult(case_id, existing.id, duplicate=True)
    conflict = InstanceConflict(
        instance_id=existing.id, blob_sha256=received.blob.sha256, size_bytes=received.blob.size,
        calling_ae=sender.calling_ae,
    )
    session.add(conflict)
    session.flush()
    audit.record(
        session, sender.label, "instance.conflict", "instance", existing.id,
        sop_instance_uid=received.sop_instance_uid,
        stored_sha256=existing.blob_sha256, received_sha256=received.blob.sha256,
    )
    return FilingResult(case_id, existing.id, duplicate=False, conflict=True)


def _new_case_with_study(
    session: Session, received: ReceivedInstance, sender: Sender, identity: SenderIdentity
) -> Study:
    folder = provisional_folder(session, sender, identity, received.trial)
    title = received.study_description or f"{received.modality or 'DICOM'} study {received.study_date}".strip()
    case = Case(folder_id=folder.id, title=title, status=CaseStatus.PENDING)
    study = Study(
        case=case,
        study_instance_uid=received.study_instance_uid,
        sender=identity.principal,
        study_date=received.study_date,
        description=received.study_description,
        procedure_code=received.procedure_code,
        patient_age=received.patient_age,
        patient_sex=received.patient_sex,
        patient_weight_kg=received.patient_weight_kg,
        trial=dict(received.trial),
    )
    session.add_all([case, study])
    session.flush()
    audit.record(session, sender.label, "case.created", "case", case.id, folder_id=folder.id)
    return study


def _open_submission(
    session: Session, received: ReceivedInstance, case_id: int, sender: Sender, identity: SenderIdentity,
    deadline: datetime, now: datetime,
) -> None:
    facts = received.manifest
    assert facts is not None
    submission = Submission(
        manifest_sop_instance_uid=received.sop_instance_uid,
        study_instance_uid=received.study_instance_uid,
        purpose=facts.purpose,
        description=facts.description,
        observer_name=facts.observer_name,
        delay_reason=facts.delay_reason or "",
        calling_ae=sender.calling_ae if identity.ae_verified else "",  # a listed-AE folder believes only these
        called_ae=sender.called_ae,
        sender=identity.principal,
        author_trusted=identity.author_trusted,
        sender_user_id=identity.user.id if identity.user is not None else None,
        case_id=case_id,
        received_at=now,
        deadline_at=deadline,
        references=[
            SubmissionReference(sop_instance_uid=uid)
            for uid in dict.fromkeys(facts.references)
            if uid != received.sop_instance_uid
        ],
    )
    session.add(submission)
    session.flush()
    audit.record(
        session, sender.label, "submission.opened", "submission", submission.id,
        manifest=received.sop_instance_uid, references=len(submission.references),
    )
