"""Assembling a TCE submission into one case, and routing it to the folder it was meant for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, quota, trials
from .db import mark_case_changed
from .folders import folder_by_path, folder_path, personal_folder, unclaimed_inbox
from .models import (
    AeBinding,
    Case,
    CaseStatus,
    CodedEntry,
    Folder,
    FolderKind,
    Instance,
    Series,
    Study,
    Submission,
    SubmissionReference,
    SubmissionState,
    TeachingDocument,
    User,
)
from .registration import describe_registration
from .senders import SenderIdentity
from .sending import may_gather, may_send, user_of_principal

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


def gatherable_instances(session: Session, submission: Submission) -> list[Instance]:
    """The objects the manifest names that it may gather: its sender's own, or of cases the
    sender may edit. Someone else's object with a named UID counts as not arrived."""
    wanted = [r.sop_instance_uid for r in submission.references]
    case = session.get_one(Case, submission.case_id)
    found: dict[str, Instance] = {}
    for instance in session.scalars(
        select(Instance).where(Instance.sop_instance_uid.in_(wanted)).order_by(Instance.id)
    ):
        if instance.sop_instance_uid not in found and may_gather(session, submission.sender, instance.series.study, case):
            found[instance.sop_instance_uid] = instance
    return list(found.values())


def missing_references(session: Session, submission: Submission) -> list[str]:
    present = {i.sop_instance_uid for i in gatherable_instances(session, submission)}
    return [r.sop_instance_uid for r in submission.references if r.sop_instance_uid not in present]


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
    present = gatherable_instances(session, submission)
    arrived = {i.sop_instance_uid for i in present}
    missing = [r.sop_instance_uid for r in submission.references if r.sop_instance_uid not in arrived]
    for instance in present:
        study = instance.series.study
        if study.case_id != case.id:
            _move_study(session, study, case)

    wanted = [r.sop_instance_uid for r in submission.references]
    teaching = _teaching_document(session, wanted, case)
    author: User | None = None
    notices: list[str] = []
    if teaching is not None:
        _apply_teaching(case, teaching.content)
        author, notice = _believed_author(session, submission, case, teaching.content)
        if notice:
            notices.append(notice)

    if trials.is_research(submission, case):  # never into a teaching folder: the project, or a hold
        research = trials.route(session, submission, case, now)
        route = Route(research.folder, research.notice)
    else:
        route = choose_route(session, submission, case, author)
    case.folder_id = route.folder.id
    case.folder = route.folder
    case.status = CaseStatus.INCOMPLETE if missing else (
        CaseStatus.COMPLETE if teaching is not None else CaseStatus.NEEDS_DETAILS
    )
    case.missing = missing
    if route.notice:
        notices.insert(0, route.notice)
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


def _believed_author(session: Session, submission: Submission, case: Case, content: dict) -> tuple[User | None, str]:  # type: ignore[type-arg]
    """The report's author, if its sender is trusted to say so; else the sending user, with the
    claim kept as text and a notice. A claim that names the sending user themselves is believed."""
    gmc = content.get("author_gmc", "")
    if submission.author_trusted:
        return (session.scalar(select(User).where(User.gmc == gmc)) if gmc else None), ""
    sender = session.get(User, submission.sender_user_id) if submission.sender_user_id else None
    if sender is not None and gmc and gmc == sender.gmc:
        return sender, ""  # the sender signs as themselves
    case.author_name, case.author_gmc = (sender.display_name, sender.gmc) if sender else ("", "")
    if not gmc and not content.get("author_name"):
        return sender, ""
    claimed = " ".join(p for p in (content.get("author_name", ""), f"({describe_registration(gmc)})" if gmc else "") if p)
    case.teaching_extra = {**(case.teaching_extra or {}), "claimed_author": claimed}
    whom = f"the sender's account ({sender.display_name})" if sender else "the admin inbox"
    return sender, (
        f"The report names {claimed} as its author, but it did not come from a registered export manager "
        f"or trusted PACS, so the claim is kept as text and the case is filed under {whom}."
    )


def _move_study(session: Session, study: Study, case: Case) -> None:
    old_case = study.case
    study.case = case
    session.flush()
    mark_case_changed(session, old_case.id)
    if not old_case.studies:
        session.delete(old_case)
        session.flush()


def _teaching_document(session: Session, wanted: list[str], case: Case) -> TeachingDocument | None:
    """The teaching-file report filed in this case, preferring one the manifest names."""
    return session.scalars(
        select(TeachingDocument)
        .join(Instance, Instance.id == TeachingDocument.instance_id)
        .join(Series, Series.id == Instance.series_id)
        .join(Study, Study.id == Series.study_id)
        .where(Study.case_id == case.id)
        .order_by(TeachingDocument.sop_instance_uid.in_(wanted).desc(), TeachingDocument.instance_id.desc())
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

    The (believed) author or the sending user must be allowed to send to a named folder; otherwise
    the case goes to the author's personal folder with a notice saying why.
    """
    fallback = _author_folder(session, case, author, submission)
    named, how = _named_folder(session, submission)
    if isinstance(named, str):  # a folder path that does not exist
        return Route(fallback, f"The folder {named} named in the manifest does not exist.")
    if named is None:
        return Route(fallback, _fallback_notice(case, author))
    identity = SenderIdentity(
        submission.sender, user_of_principal(session, submission.sender),
        author_trusted=submission.author_trusted, ae_verified=bool(submission.calling_ae),
    )
    allowed, why = may_send(session, named, identity, submission.calling_ae, author)
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
    return personal_folder(session, sender) if sender is not None else unclaimed_inbox(session)


def _fallback_notice(case: Case, author: User | None) -> str:
    if author is None and case.author_gmc:
        return (f"No user has registration number {describe_registration(case.author_gmc)}; "
                "the case waits in the admin inbox for them.")
    return ""


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
