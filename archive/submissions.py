"""Assembling a TCE submission into one case, and routing it to the folder it was meant for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, quota
from .db import mark_case_changed
from .folders import folder_by_path, folder_path, personal_folder, rights_on, unclaimed_inbox
from .models import (
    AeBinding,
    Case,
    CaseStatus,
    CodedEntry,
    Folder,
    FolderKind,
    Instance,
    SenderKind,
    SenderRestriction,
    Submission,
    SubmissionReference,
    SubmissionState,
    TeachingDocument,
    User,
)

FOLDER_IN_DESCRIPTION = re.compile(r"(?im)^\s*folder\s*:\s*(/?[^\n]+?)\s*$")


@dataclass(frozen=True)
class Route:
    folder: Folder
    notice: str = ""


def progress(session: Session, arrived_sop_uid: str, now: datetime) -> None:
    """Complete every submission that the arrival of `arrived_sop_uid` makes whole.

    An incomplete one (its wait ended) is assembled again on every late arrival, so a sender's
    retry after an outage still completes the case.
    """
    candidates = session.scalars(
        select(Submission).where(
            Submission.state.in_((SubmissionState.WAITING, SubmissionState.INCOMPLETE)),
            (Submission.manifest_sop_instance_uid == arrived_sop_uid)
            | Submission.id.in_(
                select(SubmissionReference.submission_id).where(
                    SubmissionReference.sop_instance_uid == arrived_sop_uid
                )
            ),
        )
    ).all()
    for submission in candidates:
        if submission.state is SubmissionState.INCOMPLETE or not missing_references(session, submission):
            assemble(session, submission, now)


def missing_references(session: Session, submission: Submission) -> list[str]:
    wanted = [r.sop_instance_uid for r in submission.references]
    present = set(session.scalars(select(Instance.sop_instance_uid).where(Instance.sop_instance_uid.in_(wanted))))
    return [uid for uid in wanted if uid not in present]


def sweep(session: Session, now: datetime, wait: timedelta) -> int:
    """End the wait: overdue submissions become incomplete cases, manifest-less studies need details."""
    overdue = session.scalars(
        select(Submission).where(Submission.state == SubmissionState.WAITING, Submission.deadline_at <= now)
    ).all()
    for submission in overdue:
        assemble(session, submission, now)
    claimed = select(Submission.case_id).where(Submission.case_id.is_not(None))
    orphans = session.scalars(
        select(Case).where(
            Case.status == CaseStatus.PENDING, Case.created_at <= now - wait, Case.id.not_in(claimed)
        )
    ).all()
    for case in orphans:
        case.status = CaseStatus.NEEDS_DETAILS
        case.notice = "Images arrived without a teaching-file manifest: add the details."
        audit.record(session, "archive", "case.needs_details", "case", case.id)
        mark_case_changed(session, case.id)
    return len(overdue) + len(orphans)


def assemble(session: Session, submission: Submission, now: datetime) -> Case:
    """Gather the submission's studies into its case, fill in the teaching text, and route it."""
    case = session.get_one(Case, submission.case_id)
    missing = missing_references(session, submission)
    wanted = [r.sop_instance_uid for r in submission.references]
    present = session.scalars(select(Instance).where(Instance.sop_instance_uid.in_(wanted))).all()
    for instance in present:
        study = instance.series.study
        if study.case_id != case.id:
            _move_study(session, study, case)

    teaching = _teaching_document(session, wanted, case)
    author: User | None = None
    if teaching is not None:
        _apply_teaching(case, teaching.content)
        gmc = teaching.content.get("author_gmc", "")
        author = session.scalar(select(User).where(User.gmc == gmc)) if gmc else None

    route = choose_route(session, submission, case, author)
    case.folder_id = route.folder.id
    case.folder = route.folder
    case.status = CaseStatus.INCOMPLETE if missing else (
        CaseStatus.COMPLETE if teaching is not None else CaseStatus.NEEDS_DETAILS
    )
    case.missing = missing
    notices = [route.notice] if route.notice else []
    if missing:
        notices.append(f"{len(missing)} object(s) named in the manifest never arrived.")
    case.notice = " ".join(notices)
    submission.state = SubmissionState.INCOMPLETE if missing else SubmissionState.COMPLETE
    submission.completed_at = now
    session.flush()
    audit.record(
        session, "archive", f"submission.{submission.state.value}", "submission", submission.id,
        case_id=case.id, folder=folder_path(session, route.folder), missing=len(missing),
    )
    mark_case_changed(session, case.id)
    quota.check_limit(session, route.folder)
    return case


def _move_study(session: Session, study, case: Case) -> None:  # type: ignore[no-untyped-def]
    old_case = study.case
    study.case = case
    session.flush()
    mark_case_changed(session, old_case.id)
    if not old_case.studies:
        session.delete(old_case)
        session.flush()


def _teaching_document(session: Session, wanted: list[str], case: Case) -> TeachingDocument | None:
    study_uids = [s.study_instance_uid for s in case.studies]
    return session.scalars(
        select(TeachingDocument)
        .where(
            TeachingDocument.sop_instance_uid.in_(wanted)
            | TeachingDocument.study_instance_uid.in_(study_uids)
        )
        .order_by(TeachingDocument.sop_instance_uid.in_(wanted).desc())
    ).first()


def _apply_teaching(case: Case, content: dict) -> None:  # type: ignore[type-arg]
    for name in ("history", "findings", "differential", "diagnosis", "discussion", "author_name", "author_gmc"):
        if content.get(name):
            setattr(case, name, content[name])
    if content.get("title"):
        case.title = content["title"]
    if content.get("keywords"):
        case.keywords = list(content["keywords"])
    if content.get("codes"):
        case.codes = [CodedEntry(system=s, code=c, display=d) for s, c, d in content["codes"]]
    if content.get("extra"):
        case.teaching_extra = dict(content["extra"])


def choose_route(session: Session, submission: Submission, case: Case, author: User | None) -> Route:
    """Called AE's folder, else the folder named in the manifest, else the author's personal folder.

    The author (or the calling AE) must be allowed to send to a named folder; otherwise the case
    goes to the author's personal folder with a notice saying why.
    """
    fallback = _author_folder(session, case, author, submission)
    named, how = _named_folder(session, submission)
    if isinstance(named, str):  # a folder path that does not exist
        return Route(fallback, f"The folder {named} named in the manifest does not exist.")
    if named is None:
        return Route(fallback, _fallback_notice(case, author))
    allowed, why = may_send(session, named, author, submission)
    if allowed:
        return Route(named)
    return Route(fallback, f"Not filed in {folder_path(session, named)} ({how}): {why}.")


def _named_folder(session: Session, submission: Submission) -> tuple[Folder | str | None, str]:
    binding = session.get(AeBinding, submission.called_ae) if submission.called_ae else None
    if binding is not None and binding.folder_id is not None:
        return session.get_one(Folder, binding.folder_id), f"called AE {submission.called_ae}"
    match = FOLDER_IN_DESCRIPTION.search(submission.description or "")
    if match:
        path = "/" + match.group(1).strip().strip("/")
        return folder_by_path(session, path) or path, "folder named in the manifest"
    return None, ""


def _author_folder(session: Session, case: Case, author: User | None, submission: Submission) -> Folder:
    if author is not None:
        return personal_folder(session, author)
    if case.author_gmc:  # an author with no account yet: held for them in the admin inbox
        return unclaimed_inbox(session)
    sender = session.get(User, submission.sender_user_id) if submission.sender_user_id else None
    binding = session.get(AeBinding, submission.calling_ae) if submission.calling_ae else None
    if sender is None and binding is not None and binding.user_id is not None:
        sender = session.get(User, binding.user_id)
    return personal_folder(session, sender) if sender is not None else unclaimed_inbox(session)


def _fallback_notice(case: Case, author: User | None) -> str:
    if author is None and case.author_gmc:
        return f"No user has GMC number {case.author_gmc}; the case waits in the admin inbox for them."
    return ""


def may_send(session: Session, folder: Folder, author: User | None, submission: Submission) -> tuple[bool, str]:
    restrictions = session.scalars(select(SenderRestriction).where(SenderRestriction.folder_id == folder.id)).all()
    if restrictions:
        gmcs = {r.value for r in restrictions if r.kind is SenderKind.GMC}
        aes = {r.value for r in restrictions if r.kind is SenderKind.AE_TITLE}
        if (author is not None and author.gmc in gmcs) or submission.calling_ae in aes:
            return True, ""
        who = f"GMC {author.gmc}" if author is not None else "an unknown author"
        return False, f"the folder accepts only listed senders, and {who} is not one"
    candidates = [author]
    if submission.sender_user_id:
        candidates.append(session.get(User, submission.sender_user_id))
    for user in candidates:
        if user is not None and rights_on(session, user, folder).send:
            return True, ""
    who = author.username if author is not None else "the author"
    return False, f"{who} has no send right on it"


def claim_unclaimed(session: Session, user: User) -> int:
    """Move cases waiting in the admin inbox for `user`'s GMC number into their personal folder."""
    inbox = session.scalar(select(Folder).where(Folder.kind == FolderKind.INBOX))
    if inbox is None:
        return 0
    waiting = session.scalars(select(Case).where(Case.folder_id == inbox.id, Case.author_gmc == user.gmc)).all()
    home = personal_folder(session, user)
    for case in waiting:
        case.folder_id = home.id
        case.notice = "Moved here from the admin inbox when your account was created."
        audit.record(session, "archive", "case.claimed", "case", case.id, user=user.username)
        mark_case_changed(session, case.id)
    return len(waiting)
