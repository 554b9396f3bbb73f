"""SQLAlchemy 2 models. Schema changes go through Alembic migrations in `archive/migrations`."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[str]: JSON}


class FolderKind(str, enum.Enum):
    PERSONAL = "personal"
    SHARED = "shared"
    LDM = "ldm"
    EXAM = "exam"
    PUBLIC = "public"
    PROJECT = "project"
    INBOX = "inbox"  # admin-only landing place for objects whose owner is not known yet
    HOLD = "hold"  # research objects held for a project's coordinators (or, with no project, for admins)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    gmc: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)  # may not sign in; tokens and sessions refused
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for scripts; only its SHA-256 is stored. It expires and can be revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()

    user: Mapped[User] = relationship()


class UserSession(Base):
    """A browser session held on the server: the cookie carries only a random key whose SHA-256
    is stored here, so logging out (or disabling the user) ends it at once."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")

    user: Mapped[User] = relationship()


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_folder_sibling_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[FolderKind] = mapped_column(Enum(FolderKind, native_enum=False, length=16))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    storage_limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    limit_is_hard: Mapped[bool] = mapped_column(Boolean, default=False)
    limit_notice_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    # the research project this folder belongs to: its rights come from the project's members only
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User | None] = relationship()
    parent: Mapped[Folder | None] = relationship(remote_side=[id])


class FolderGrant(Base):
    """Rights one user holds on a folder and, by inheritance, on its sub-folders."""

    __tablename__ = "folder_grants"
    __table_args__ = (UniqueConstraint("folder_id", "user_id", name="uq_grant_folder_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    can_view: Mapped[bool] = mapped_column(Boolean, default=True)
    can_edit: Mapped[bool] = mapped_column(Boolean, default=False)
    can_send: Mapped[bool] = mapped_column(Boolean, default=False)


class SenderKind(str, enum.Enum):
    GMC = "gmc"
    AE_TITLE = "ae"


class SenderRestriction(Base):
    """When a folder has any restriction rows, only the listed GMC numbers / calling AEs may send to it."""

    __tablename__ = "sender_restrictions"
    __table_args__ = (UniqueConstraint("folder_id", "kind", "value", name="uq_sender_restriction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[SenderKind] = mapped_column(Enum(SenderKind, native_enum=False, length=8))
    value: Mapped[str] = mapped_column(String(64))


class AeTrust(str, enum.Enum):
    """How far the archive believes what a registered calling AE claims."""

    EDGE = "edge"  # a Casebank export manager (or another IHE TCE export manager): authors believed
    PACS = "pacs"  # a PACS the admin trusts to sign teaching files for its users: authors believed
    USER = "user"  # a workstation or script: files under its bound user; claimed authors kept as text


class RegisteredAe(Base):
    """The AE registry: calling AE titles the admin knows, where they connect from, and how far
    they are trusted. An association whose address does not match a registered host is treated as
    an unknown AE (an AE title is only a claim)."""

    __tablename__ = "registered_aes"

    ae_title: Mapped[str] = mapped_column(String(16), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")  # empty: from any address
    trust: Mapped[AeTrust] = mapped_column(Enum(AeTrust, native_enum=False, length=8))
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AeBinding(Base):
    """Maps a calling AE title to the user whose personal folder receives what it sends."""

    __tablename__ = "ae_bindings"

    ae_title: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))


class CaseStatus(str, enum.Enum):
    PENDING = "pending"  # objects are arriving; the submission is not assembled yet
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"  # the wait ended with references of the manifest still missing
    NEEDS_DETAILS = "needs_details"  # images arrived without a manifest or teaching text


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"), index=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    history: Mapped[str] = mapped_column(Text, default="")
    findings: Mapped[str] = mapped_column(Text, default="")
    diagnosis: Mapped[str] = mapped_column(Text, default="")
    differential: Mapped[str] = mapped_column(Text, default="")
    discussion: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[str]] = mapped_column(default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    author_name: Mapped[str] = mapped_column(String(200), default="")
    author_gmc: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[CaseStatus] = mapped_column(
        Enum(CaseStatus, native_enum=False, length=16), default=CaseStatus.COMPLETE
    )
    missing: Mapped[list[str]] = mapped_column(default=list)  # SOP Instance UIDs a manifest named
    notice: Mapped[str] = mapped_column(Text, default="")  # why the case is where it is, for its owner
    teaching_extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # category, level, ...
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    folder: Mapped[Folder] = relationship()
    codes: Mapped[list[CodedEntry]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CodedEntry.id"
    )
    studies: Mapped[list[Study]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Study.id"
    )
    attachments: Mapped[list[Attachment]] = relationship(cascade="all, delete-orphan")


class CodedEntry(Base):
    __tablename__ = "coded_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    display: Mapped[str] = mapped_column(String(500), default="")

    case: Mapped[Case] = relationship(back_populates="codes")


class Study(Base):
    """A study as one sender filed it. A Study Instance UID is a claim of the network: two senders
    who may not add to each other's cases get two studies with the same UID, kept apart."""

    __tablename__ = "studies"
    __table_args__ = (
        UniqueConstraint("case_id", "study_instance_uid", name="uq_study_in_case"),
        # one sender's study is one row, even when two archive processes receive it at once
        UniqueConstraint("sender", "study_instance_uid", name="uq_study_of_sender"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    sender: Mapped[str] = mapped_column(String(100), default="")  # principal that filed it first (archive.filing)
    study_date: Mapped[str] = mapped_column(String(8), default="")
    description: Mapped[str] = mapped_column(String(200), default="")
    procedure_code: Mapped[str] = mapped_column(String(64), default="")
    patient_age: Mapped[str] = mapped_column(String(4), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    patient_weight_kg: Mapped[float | None] = mapped_column(Float)
    # Clinical Trial Subject and Study modules as the export manager wrote them (pseudonyms only)
    trial: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="Series.series_number"
    )


class Series(Base):
    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("study_id", "series_instance_uid", name="uq_series_in_study"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    series_number: Mapped[int | None] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(16), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(String(200), default="")
    # how the series opens in the viewer for everyone, saved by an editor (archive.display)
    default_window_center: Mapped[float | None] = mapped_column(Float)
    default_window_width: Mapped[float | None] = mapped_column(Float)
    default_crop: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(
        back_populates="series", cascade="all, delete-orphan", order_by="Instance.instance_number"
    )


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("series_id", "sop_instance_uid", name="uq_instance_in_series"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    instance_number: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    blob_sha256: Mapped[str] = mapped_column(String(64), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    series: Mapped[Series] = relationship(back_populates="instances")


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    blob_sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Like(Base):
    __tablename__ = "likes"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only: `archive.audit` refuses updates and deletes of these rows."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SubmissionState(str, enum.Enum):
    WAITING = "waiting"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"


class Submission(Base):
    """One TCE manifest (KOS) and the objects it references, assembled in any order."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_sop_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    sender: Mapped[str] = mapped_column(String(100), default="")  # principal of the manifest's sender
    author_trusted: Mapped[bool] = mapped_column(Boolean, default=False)  # sent by a trusted edge or PACS
    study_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[SubmissionState] = mapped_column(
        Enum(SubmissionState, native_enum=False, length=16), default=SubmissionState.WAITING
    )
    purpose: Mapped[str] = mapped_column(String(32), default="teaching")
    description: Mapped[str] = mapped_column(Text, default="")
    observer_name: Mapped[str] = mapped_column(String(200), default="")
    delay_reason: Mapped[str] = mapped_column(String(200), default="")
    calling_ae: Mapped[str] = mapped_column(String(16), default="")
    called_ae: Mapped[str] = mapped_column(String(16), default="")
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(index=True)
    completed_at: Mapped[datetime | None] = mapped_column()

    references: Mapped[list[SubmissionReference]] = relationship(cascade="all, delete-orphan")


class SubmissionReference(Base):
    """One SOP Instance UID a manifest names; indexed so each arrival finds its submissions."""

    __tablename__ = "submission_references"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    sop_instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class TeachingDocument(Base):
    """The parsed content of an ATFI structured report, kept until its submission is assembled.
    Keyed by the filed instance, so a report that reuses another's UIDs never replaces it."""

    __tablename__ = "teaching_documents"

    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)


class QuarantineState(str, enum.Enum):
    HELD = "held"
    RELEASED = "released"
    DELETED = "deleted"


class QuarantinedObject(Base):
    """Acknowledged to the sender but visible to nobody but admins: it may still identify a patient."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    blob_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    reasons: Mapped[list[str]] = mapped_column(default=list)
    calling_ae: Mapped[str] = mapped_column(String(16), default="")
    called_ae: Mapped[str] = mapped_column(String(16), default="")
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)  # told about it
    state: Mapped[QuarantineState] = mapped_column(
        Enum(QuarantineState, native_enum=False, length=16), default=QuarantineState.HELD
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column()


class InstanceConflict(Base):
    """The same SOP Instance UID arrived again with different content: kept, and flagged for an admin."""

    __tablename__ = "instance_conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    blob_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    calling_ae: Mapped[str] = mapped_column(String(16), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class SearchPending(Base):
    """Cases changed but not yet confirmed in the search index: written in the same transaction
    as the change, removed once the index has them, so a search outage loses nothing."""

    __tablename__ = "search_pending"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)  # no foreign key: deletions are queued too
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)


class FieldType(str, enum.Enum):
    KEYWORD = "keyword"
    NUMBER = "number"
    DATE = "date"


class CatalogueField(Base):
    """One of a folder's custom catalogue fields; sub-folders inherit their ancestors' fields."""

    __tablename__ = "catalogue_fields"
    __table_args__ = (UniqueConstraint("folder_id", "name", name="uq_catalogue_field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    type: Mapped[FieldType] = mapped_column(Enum(FieldType, native_enum=False, length=16))
    choices: Mapped[list[str]] = mapped_column(default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ProjectRole(str, enum.Enum):
    PRINCIPAL_INVESTIGATOR = "pi"  # adds members, sites and time points; sees and edits everything
    COORDINATOR = "coordinator"  # tracks and QCs submissions, sees held ones
    RESEARCHER = "researcher"  # searches, builds cohorts, exports
    SITE_UPLOADER = "site_uploader"  # sends for one site; sees nothing
    VIEWER = "viewer"


class Project(Base):
    """A research collection or clinical trial: its cases live in its own folders, seen by its
    members only. The archive holds pseudonyms only; the re-identification key stays at the edge."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # the edge's project name ("project: NAME")
    title: Mapped[str] = mapped_column(String(200), default="")
    protocol_id: Mapped[str] = mapped_column(String(64), unique=True)  # Clinical Trial Protocol ID (0012,0020)
    protocol_name: Mapped[str] = mapped_column(String(200), default="")
    sponsor: Mapped[str] = mapped_column(String(200), default="")
    coordinating_center: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    dates_shifted: Mapped[bool] = mapped_column(Boolean, default=True)  # sites send with Modified Dates
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_project_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[ProjectRole] = mapped_column(Enum(ProjectRole, native_enum=False, length=24))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("trial_sites.id", ondelete="SET NULL"))  # a site uploader's site

    user: Mapped[User] = relationship()


class TrialSite(Base):
    """A site enrolled in a project, and the export managers (calling AE titles) that send for it."""

    __tablename__ = "trial_sites"
    __table_args__ = (UniqueConstraint("project_id", "site_id", name="uq_trial_site"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[str] = mapped_column(String(64))  # Clinical Trial Site ID (0012,0030)
    name: Mapped[str] = mapped_column(String(200), default="")
    contact_email: Mapped[str] = mapped_column(String(320), default="")
    ae_titles: Mapped[list[str]] = mapped_column(default=list)


class TimePoint(Base):
    """A time point of the protocol and the series each submission for it must hold."""

    __tablename__ = "time_points"
    __table_args__ = (UniqueConstraint("project_id", "code", name="uq_time_point"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # Clinical Trial Time Point ID (0012,0050)
    label: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    day: Mapped[int | None] = mapped_column(Integer)  # nominal days after the first time point
    window_days: Mapped[int | None] = mapped_column(Integer)  # tolerance around `day`
    expected_series: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{modality, description}]


class TrialSubject(Base):
    __tablename__ = "trial_subjects"
    __table_args__ = (UniqueConstraint("project_id", "subject_id", name="uq_trial_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[str] = mapped_column(String(64))  # Clinical Trial Subject ID: the edge's pseudonym
    site_id: Mapped[int] = mapped_column(ForeignKey("trial_sites.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[TrialSite] = relationship()


class QcState(str, enum.Enum):
    RECEIVED = "received"
    PASSED = "passed"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class TrialSubmission(Base):
    """What one site sent for one subject and time point, and its quality control."""

    __tablename__ = "trial_submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("trial_subjects.id", ondelete="CASCADE"), index=True)
    time_point_id: Mapped[int | None] = mapped_column(ForeignKey("time_points.id", ondelete="SET NULL"))
    time_point_code: Mapped[str] = mapped_column(String(64), default="")  # as sent, even when unknown
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="SET NULL"))
    state: Mapped[QcState] = mapped_column(Enum(QcState, native_enum=False, length=16), default=QcState.RECEIVED)
    reasons: Mapped[list[str]] = mapped_column(default=list)
    study_date: Mapped[str] = mapped_column(String(8), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str] = mapped_column(String(100), default="")  # "automatic QC" or a user name
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("trial_submissions.id", ondelete="SET NULL"))

    subject: Mapped[TrialSubject] = relationship()
    time_point: Mapped[TimePoint | None] = relationship()


class Cohort(Base):
    """A saved search that grows as cases arrive; frozen into versions that never change."""

    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    filters: Mapped[list[str]] = mapped_column(default=list)  # "FIELD:VALUE", as the search takes them
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship()


class CohortVersion(Base):
    """A frozen cohort: exactly which cases and instances, by whom and when. Append-only."""

    __tablename__ = "cohort_versions"
    __table_args__ = (UniqueConstraint("cohort_id", "number", name="uq_cohort_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    frozen_at: Mapped[datetime] = mapped_column(default=utcnow)
    frozen_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    query: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the search as it was when frozen
    # [{"case_id", "title", "studies": [{"study_instance_uid", "instances": [[sop_uid, sha256, size]]}]}]
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    frozen_by: Mapped[User] = relationship()


class QuizMode(str, enum.Enum):
    SELF_TEST = "self_test"  # answers shown after each case
    EXAM = "exam"  # answers only at the end (or when the examiner reveals them)


class Quiz(Base):
    """A quiz or exam built from cases: which teaching fields candidates may not see, the order,
    a time per case (rapid reporting) or none (long cases), and when answers are shown."""

    __tablename__ = "quizzes"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    mode: Mapped[QuizMode] = mapped_column(Enum(QuizMode, native_enum=False, length=16), default=QuizMode.SELF_TEST)
    hidden_fields: Mapped[list[str]] = mapped_column(default=list)  # archive.quizzes.HIDEABLE
    seconds_per_case: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(500), default="")  # how it was built: a folder, a search...
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship()
    items: Mapped[list[QuizItem]] = relationship(
        back_populates="quiz", cascade="all, delete-orphan", order_by="QuizItem.position"
    )


class QuizItem(Base):
    __tablename__ = "quiz_items"
    __table_args__ = (UniqueConstraint("quiz_id", "position", name="uq_quiz_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # from 1: the candidate sees "Case N"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)

    quiz: Mapped[Quiz] = relationship(back_populates="items")
    case: Mapped[Case] = relationship()


class QuizSession(Base):
    """A live exam: the examiner's screen drives, candidate screens (joined by an unguessable
    token, no login needed) follow. `revision` grows with every change so screens know to update."""

    __tablename__ = "quiz_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"), index=True)
    examiner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    candidate_token: Mapped[str] = mapped_column(String(64), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=1)
    revealed: Mapped[bool] = mapped_column(Boolean, default=False)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    case_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    quiz: Mapped[Quiz] = relationship()


class QuizAttempt(Base):
    """One trainee taking a quiz alone: an answer per case, scored, kept as history."""

    __tablename__ = "quiz_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    answers: Mapped[list[QuizAnswer]] = relationship(
        back_populates="attempt", cascade="all, delete-orphan", order_by="QuizAnswer.position"
    )


class QuizAnswer(Base):
    __tablename__ = "quiz_answers"
    __table_args__ = (UniqueConstraint("attempt_id", "position", name="uq_answer_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(Text, default="")
    correct: Mapped[bool] = mapped_column(Boolean, default=False)
    matched: Mapped[str] = mapped_column(String(500), default="")  # what the answer matched, for the trainee
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)

    attempt: Mapped[QuizAttempt] = relationship(back_populates="answers")


class PublicLink(Base):
    """An anonymised public page of a case behind an unguessable token; revocable, may expire.
    Only the token's SHA-256 is stored, like API tokens."""

    __tablename__ = "public_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    views: Mapped[int] = mapped_column(Integer, default=0)
    # the instances that passed the door check when published: only these are served
    instance_ids: Mapped[list[int]] = mapped_column(JSON, default=list)

    case: Mapped[Case] = relationship()


class ForwardDestination(Base):
    """Another archive an admin lets editors forward cases to: DICOM (AE, host, port, TLS) or a
    DICOMweb STOW-RS URL with a bearer token. Sent through an outbox of its own (archive.forwarding)."""

    __tablename__ = "forward_destinations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # also the outbox folder's name
    kind: Mapped[str] = mapped_column(String(8))  # "dicom" or "stowrs"
    ae_title: Mapped[str] = mapped_column(String(16), default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int | None] = mapped_column(Integer)
    tls: Mapped[bool] = mapped_column(Boolean, default=False)
    url: Mapped[str] = mapped_column(String(1000), default="")
    bearer_token: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
