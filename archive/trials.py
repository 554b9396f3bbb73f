"""Clinical trial submissions: routing a research export into its project, subjects, and QC.

An export is research when its manifest says so (For Clinical Trial / Research Collection
Export, or a ``project:`` line) or its objects carry a Clinical Trial Protocol ID. It is filed
into its project only when the project is known and the sender is an export manager enrolled for
the site the objects name (or a member who may send for it); otherwise it waits in a hold, for
the project's coordinators or, when no project claims it, for admins. It is never filed into a
teaching folder.

Every routed export becomes a :class:`TrialSubmission` for its subject and time point, checked
at arrival: the time point is one the protocol defines, the series it expects are there, every
object passed the archive's de-identification check and arrived, and its dates fit the project's
shifted timeline. A failure is mailed to the site's contact; a later submission for the same
subject and time point supersedes the earlier one.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, mail
from .errors import InvalidInput, NotFound
from .folders import folder_path
from .models import (
    Case,
    Folder,
    Project,
    ProjectMember,
    ProjectRole,
    QcState,
    QuarantinedObject,
    Submission,
    SubmissionState,
    TimePoint,
    TrialSite,
    TrialSubject,
    TrialSubmission,
    User,
    utcnow,
)
from .projects import (
    COORDINATORS,
    folders_of,
    project_by_name,
    project_by_protocol,
    require_role,
    research_hold,
    sites_of,
    time_points_of,
)

RESEARCH_PURPOSES = frozenset({"clinical_trial", "research"})
AUTOMATIC_QC = "automatic QC"

TRIAL_ATTRIBUTES = {
    "sponsor": "ClinicalTrialSponsorName",
    "protocol_id": "ClinicalTrialProtocolID",
    "protocol_name": "ClinicalTrialProtocolName",
    "site_id": "ClinicalTrialSiteID",
    "site_name": "ClinicalTrialSiteName",
    "subject_id": "ClinicalTrialSubjectID",
    "time_point_id": "ClinicalTrialTimePointID",
    "time_point_description": "ClinicalTrialTimePointDescription",
    "coordinating_center": "ClinicalTrialCoordinatingCenterName",
    "longitudinal": "LongitudinalTemporalInformationModified",
}
"""The archive's names for the Clinical Trial Subject and Study attributes (PS3.3 C.7.1.3, C.7.2.3)
and for Longitudinal Temporal Information Modified (0028,0303), which says whether dates were shifted."""


@dataclass(frozen=True)
class ResearchRoute:
    folder: Folder
    notice: str
    project: Project | None = None
    submission: TrialSubmission | None = None


PROJECT_IN_DESCRIPTION = re.compile(r"(?im)^\s*project\s*:\s*([A-Za-z0-9][A-Za-z0-9_-]*)\s*$")
"""The manifest line an export manager writes for a research project (as the edge reads it)."""


def project_line(description: str) -> str | None:
    match = PROJECT_IN_DESCRIPTION.search(description or "")
    return match.group(1) if match else None


def trial_of(case: Case) -> dict[str, str]:
    """The Clinical Trial attributes of a case: its studies' merged (first value wins)."""
    merged: dict[str, str] = {}
    for study in case.studies:
        for key, value in (study.trial or {}).items():
            if value and key not in merged:
                merged[key] = value
    return merged


def is_research(submission: Submission, case: Case) -> bool:
    return (submission.purpose in RESEARCH_PURPOSES or project_line(submission.description) is not None
            or bool(trial_of(case).get("protocol_id")))


def site_projects(session: Session, calling_ae: str) -> list[Project]:
    """Projects in which `calling_ae` is an enrolled site's export manager."""
    if not calling_ae:
        return []
    rows = session.scalars(select(TrialSite)).all()
    ids = {site.project_id for site in rows if calling_ae in (site.ae_titles or [])}
    return [p for p in (session.get(Project, i) for i in sorted(ids)) if p is not None]


def provisional_folder(session: Session, trial: dict[str, str], calling_ae: str) -> Folder | None:
    """Where a research object waits for its manifest, or None for a teaching object: the hold of
    the project its Protocol ID names (or whose site sends it), else the admins' research hold."""
    protocol = trial.get("protocol_id", "")
    if protocol:
        project = project_by_protocol(session, protocol)
        return folders_of(session, project).hold if project is not None else research_hold(session)
    projects = site_projects(session, calling_ae)
    if projects:
        return folders_of(session, projects[0]).hold
    return None


def route(session: Session, submission: Submission, case: Case, now: datetime) -> ResearchRoute:
    """File a research export into its project, or hold it with the reason."""
    trial = trial_of(case)
    first = submission.state is SubmissionState.WAITING
    protocol, named = trial.get("protocol_id", ""), project_line(submission.description)
    by_protocol = project_by_protocol(session, protocol) if protocol else None
    by_name = project_by_name(session, named) if named else None
    if protocol and by_protocol is None:
        return _hold_unclaimed(session, case, f"no project has Clinical Trial Protocol ID {protocol}")
    if named and by_name is None and by_protocol is None:
        return _hold_unclaimed(session, case, f"the manifest names project {named}, which this archive does not have")
    if by_protocol is not None and by_name is not None and by_protocol.id != by_name.id:
        return _hold_unclaimed(session, case, f"protocol ID {protocol} belongs to project {by_protocol.name} "
                                              f"but the manifest names project {named}")
    project = by_protocol or by_name
    if project is None:
        return _hold_unclaimed(session, case, "a research export that names no project and no protocol ID")
    site, why = _sending_site(session, project, submission, trial.get("site_id", ""))
    if site is None:
        return _hold_for_coordinators(session, project, case, why, first=first)
    subject_id = trial.get("subject_id", "")
    if not subject_id:
        return _hold_for_coordinators(session, project, case, "the objects carry no Clinical Trial Subject ID",
                                      first=first)
    subject = session.scalar(select(TrialSubject).where(
        TrialSubject.project_id == project.id, TrialSubject.subject_id == subject_id))
    if subject is None:
        subject = TrialSubject(project_id=project.id, subject_id=subject_id, site_id=site.id)
        session.add(subject)
        session.flush()
    elif subject.site_id != site.id:
        return _hold_for_coordinators(session, project, case, f"subject {subject_id} is enrolled at site "
                                      f"{subject.site.site_id}, but this export came from site {site.site_id}",
                                      first=first)
    entry = _submission_of(session, project, subject, submission, case, trial, now)
    run_qc(session, project, entry, case, submission, now)
    if not case.title or case.title == (case.studies[0].description if case.studies else ""):
        label = entry.time_point.label if entry.time_point else entry.time_point_code or "no time point"
        case.title = f"{subject_id} · {label}"
    return ResearchRoute(folders_of(session, project).collection, _qc_notice(entry), project, entry)


def _sending_site(session: Session, project: Project, submission: Submission, claimed: str) -> tuple[TrialSite | None, str]:
    """The enrolled site this export may be filed for, or None and why not."""
    sites = sites_of(session, project)
    allowed = [s for s in sites if submission.calling_ae and submission.calling_ae in (s.ae_titles or [])]
    member = session.scalar(select(ProjectMember).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == submission.sender_user_id
    )) if submission.sender_user_id else None
    if member is not None and member.role in COORDINATORS:
        allowed = sites
    elif member is not None and member.role is ProjectRole.SITE_UPLOADER:
        allowed += [s for s in sites if s.id == member.site_id]
    sender = f"export manager {submission.calling_ae}" if submission.calling_ae else "this sender"
    if claimed:
        match = [s for s in allowed if s.site_id == claimed]
        if match:
            return match[0], ""
        if any(s.site_id == claimed for s in sites):
            return None, f"{sender} is not enrolled to send for site {claimed}"
        return None, f"site {claimed} is not enrolled in project {project.name}"
    if len(allowed) == 1:
        return allowed[0], ""
    if not allowed:
        return None, f"{sender} is not enrolled for any site of project {project.name}"
    return None, "the objects carry no Clinical Trial Site ID and the sender sends for several sites"


def _hold_unclaimed(session: Session, case: Case, why: str) -> ResearchRoute:
    audit.record(session, "archive", "research.held", "case", case.id, reason=why)
    return ResearchRoute(research_hold(session), f"Held for an administrator: {why}.")


def _hold_for_coordinators(session: Session, project: Project, case: Case, why: str, *, first: bool) -> ResearchRoute:
    hold = folders_of(session, project).hold
    audit.record(session, "archive", "research.held", "case", case.id, project=project.name, reason=why)
    if first:  # mailed when the submission is first assembled, not on every late arrival
        for user in coordinators_of(session, project):
            mail.queue_mail(session, mail.OutgoingMail(
                to=user.email, subject=f"[Casebank] {project.name}: a submission is held for you",
                body=f"A submission to project {project.name} was held: {why}.\n\nIt waits in "
                     f"{folder_path(session, hold)} (case {case.id}) until you enrol the site or discard it.\n",
            ))
    return ResearchRoute(hold, f"Held for the coordinators of project {project.name}: {why}.", project)


def coordinators_of(session: Session, project: Project) -> list[User]:
    return list(session.scalars(select(User).join(ProjectMember, ProjectMember.user_id == User.id).where(
        ProjectMember.project_id == project.id, ProjectMember.role.in_(COORDINATORS), User.email != "")))


def _submission_of(
    session: Session, project: Project, subject: TrialSubject, submission: Submission, case: Case,
    trial: dict[str, str], now: datetime,
) -> TrialSubmission:
    """This export's trial submission (the same one when a late object re-assembles it); a new one
    supersedes what was sent before for the subject and time point."""
    code = trial.get("time_point_id", "")
    point = next((p for p in time_points_of(session, project) if code and p.code.lower() == code.lower()), None)
    entry = session.scalar(select(TrialSubmission).where(TrialSubmission.submission_id == submission.id))
    dates = sorted(s.study_date for s in case.studies if s.study_date)
    if entry is None:
        entry = TrialSubmission(project_id=project.id, subject_id=subject.id, submission_id=submission.id, received_at=now)
        session.add(entry)
    entry.time_point_id, entry.time_point, entry.time_point_code = (point.id if point else None), point, code
    entry.case_id, entry.study_date = case.id, dates[0] if dates else ""
    session.flush()
    earlier = session.scalars(select(TrialSubmission).where(
        TrialSubmission.project_id == project.id, TrialSubmission.subject_id == subject.id,
        TrialSubmission.time_point_code == code, TrialSubmission.id != entry.id,
        TrialSubmission.state != QcState.SUPERSEDED, TrialSubmission.received_at <= entry.received_at,
    )).all()
    for old in earlier:
        old.state, old.superseded_by_id, old.decided_at = QcState.SUPERSEDED, entry.id, now
        audit.record(session, "archive", "trial.superseded", "trial_submission", old.id, by=entry.id)
    return entry


def run_qc(session: Session, project: Project, entry: TrialSubmission, case: Case, submission: Submission,
           now: datetime) -> None:
    """Automatic QC at arrival; a failure is mailed to the site's contact (once per new reason set)."""
    reasons = qc_reasons(session, project, entry, case, submission, now.date())
    before = (entry.state, list(entry.reasons or []))
    entry.state = QcState.FAILED if reasons else QcState.PASSED
    entry.reasons, entry.decided_at, entry.decided_by = reasons, now, AUTOMATIC_QC
    session.flush()
    audit.record(session, AUTOMATIC_QC, f"trial.qc_{entry.state.value}", "trial_submission", entry.id,
                 case_id=case.id, reasons=reasons)
    if entry.state is QcState.FAILED and before != (QcState.FAILED, reasons):
        _mail_failure(session, project, entry, reasons)


def qc_reasons(session: Session, project: Project, entry: TrialSubmission, case: Case, submission: Submission,
               today: date) -> list[str]:
    reasons: list[str] = []
    point = entry.time_point
    if not entry.time_point_code:
        reasons.append("the objects carry no Clinical Trial Time Point ID")
    elif point is None:
        known = ", ".join(p.code for p in time_points_of(session, project)) or "none defined yet"
        reasons.append(f"time point {entry.time_point_code} is not defined by the protocol (defined: {known})")
    series = [se for st in case.studies for se in st.series]
    for expected in (point.expected_series if point else []):
        if not any(_matches(se.modality, se.description, expected) for se in series):
            reasons.append(f"expected series missing: {expected['modality']} with description "
                           f"'{expected.get('description', '*')}'")
    wanted = [r.sop_instance_uid for r in submission.references]
    held = session.scalar(select(QuarantinedObject.id).where(QuarantinedObject.sop_instance_uid.in_(wanted))) if wanted else None
    if held is not None:
        reasons.append("de-identification not verified: objects of this submission are held in quarantine")
    if case.missing:
        reasons.append(f"{len(case.missing)} object(s) named in the manifest have not arrived")
    reasons.extend(_timeline_reasons(session, project, entry, case, today))
    return reasons


def _matches(modality: str, description: str, expected: dict[str, str]) -> bool:
    return (modality.upper() == expected["modality"].upper()
            and fnmatch.fnmatch((description or "").lower(), (expected.get("description") or "*").lower()))


def _timeline_reasons(session: Session, project: Project, entry: TrialSubmission, case: Case, today: date) -> list[str]:
    reasons: list[str] = []
    if project.dates_shifted:
        declared = {(st.trial or {}).get("longitudinal", "") for st in case.studies}
        if declared - {"MODIFIED"}:
            said = ", ".join(sorted(d or "nothing" for d in declared - {"MODIFIED"}))
            reasons.append(f"dates were not shifted as the project requires (Longitudinal Temporal "
                           f"Information Modified says {said})")
    when = _date(entry.study_date)
    if when is None:
        reasons.append("no study date: the submission cannot be placed on the subject's timeline")
        return reasons
    if when > today:
        reasons.append(f"study date {when.isoformat()} is in the future")
    point = entry.time_point
    if point is None:
        return reasons
    others = session.scalars(select(TrialSubmission).where(
        TrialSubmission.subject_id == entry.subject_id, TrialSubmission.id != entry.id,
        TrialSubmission.state != QcState.SUPERSEDED, TrialSubmission.time_point_id.is_not(None),
    )).all()
    for other in others:
        other_date, other_point = _date(other.study_date), other.time_point
        if other_date is None or other_point is None or other_point.id == point.id:
            continue
        if other_point.position < point.position and when < other_date:
            reasons.append(f"study date {when.isoformat()} is before {other_point.label}'s ({other_date.isoformat()})")
        if other_point.position > point.position and when > other_date:
            reasons.append(f"study date {when.isoformat()} is after {other_point.label}'s ({other_date.isoformat()})")
        first = min(time_points_of(session, project), key=lambda p: p.position)
        if other_point.id == first.id and point.day is not None and point.window_days is not None:
            offset = (when - other_date).days - (point.day - (first.day or 0))
            if abs(offset) > point.window_days:
                reasons.append(f"{point.label} is {(when - other_date).days} days after {first.label}; the protocol "
                               f"expects {point.day - (first.day or 0)} ± {point.window_days}")
    return reasons


def _date(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date() if text else None
    except ValueError:
        return None


def _qc_notice(entry: TrialSubmission) -> str:
    if entry.state is QcState.FAILED:
        return "QC failed: " + "; ".join(entry.reasons) + "."
    return ""


def _mail_failure(session: Session, project: Project, entry: TrialSubmission, reasons: list[str]) -> None:
    site = entry.subject.site
    recipients = [site.contact_email] if site.contact_email else [u.email for u in coordinators_of(session, project)]
    point = entry.time_point.label if entry.time_point else entry.time_point_code or "(no time point)"
    body = (f"The submission for subject {entry.subject.subject_id}, time point {point}, sent by site "
            f"{site.site_id} ({site.name}) to project {project.name}, failed quality control:\n\n"
            + "".join(f"  - {r}\n" for r in reasons)
            + "\nPlease correct it and send it again from your export manager; the new submission "
              "replaces this one.\n")
    for to in recipients:
        mail.queue_mail(session, mail.OutgoingMail(
            to=to, subject=f"[Casebank] {project.name}: QC failed for {entry.subject.subject_id} at {point}", body=body))


def decide(session: Session, actor: User, project: Project, entry_id: int, passed: bool, reason: str = "") -> TrialSubmission:
    """A coordinator's own QC verdict over the automatic one (a failure needs a reason; it is mailed)."""
    require_role(session, actor, project, COORDINATORS, "decide QC")
    entry = session.get(TrialSubmission, entry_id)
    if entry is None or entry.project_id != project.id:
        raise NotFound(f"submission {entry_id} does not exist")
    if entry.state is QcState.SUPERSEDED:
        raise InvalidInput(f"submission {entry_id} was superseded by a resubmission; decide on that one")
    if not passed and len(reason.strip()) < 5:
        raise InvalidInput("a failed QC needs a reason the site can act on")
    entry.state = QcState.PASSED if passed else QcState.FAILED
    entry.reasons = [] if passed else [reason.strip()]
    entry.decided_at, entry.decided_by = utcnow(), actor.username
    session.flush()
    audit.record(session, actor, f"trial.qc_{entry.state.value}", "trial_submission", entry.id, reason=reason.strip())
    if not passed:
        _mail_failure(session, project, entry, entry.reasons)
    return entry


@dataclass
class Cell:
    state: QcState
    submission_id: int
    case_id: int | None
    reasons: list[str]
    study_date: str
    superseded: int = 0  # earlier submissions this one replaced


@dataclass
class MatrixRow:
    subject: TrialSubject
    cells: dict[str, Cell] = field(default_factory=dict)  # time point code -> current submission


@dataclass
class Matrix:
    time_points: list[TimePoint]
    rows: list[MatrixRow]
    sites: list[TrialSite]
    unknown_time_points: list[str]  # codes sent that the protocol does not define


def matrix(session: Session, user: User, project: Project, site_id: str = "") -> Matrix:
    """Subjects x time points with the state of each cell; PI, coordinators, researchers and viewers."""
    require_role(session, user, project, COORDINATORS | {ProjectRole.RESEARCHER, ProjectRole.VIEWER}, "see submissions")
    points = time_points_of(session, project)
    sites = sites_of(session, project)
    subjects = session.scalars(select(TrialSubject).where(TrialSubject.project_id == project.id)
                               .order_by(TrialSubject.subject_id)).all()
    if site_id:
        subjects = [s for s in subjects if s.site.site_id == site_id]
    rows = {s.id: MatrixRow(s) for s in subjects}
    known = {p.code for p in points}
    unknown: list[str] = []
    entries = session.scalars(select(TrialSubmission).where(TrialSubmission.project_id == project.id)
                              .order_by(TrialSubmission.received_at, TrialSubmission.id)).all()
    for entry in entries:
        row = rows.get(entry.subject_id)
        if row is None:
            continue
        code = entry.time_point.code if entry.time_point else entry.time_point_code
        if code not in known and code not in unknown:
            unknown.append(code)
        current = row.cells.get(code)
        if entry.state is QcState.SUPERSEDED:
            if current is not None:
                current.superseded += 1
            continue
        row.cells[code] = Cell(entry.state, entry.id, entry.case_id, list(entry.reasons or []), entry.study_date,
                               superseded=sum(1 for e in entries if e.superseded_by_id == entry.id))
    return Matrix(points, list(rows.values()), sites, unknown)


def held_cases(session: Session, user: User, project: Project) -> list[Case]:
    require_role(session, user, project, COORDINATORS, "see held submissions")
    hold = folders_of(session, project).hold
    return list(session.scalars(select(Case).where(Case.folder_id == hold.id).order_by(Case.created_at)))


def subject_counts(session: Session, project: Project) -> dict[str, int]:
    """Per site ID, how many subjects it has sent."""
    counts: dict[str, int] = {}
    for subject in session.scalars(select(TrialSubject).where(TrialSubject.project_id == project.id)):
        counts[subject.site.site_id] = counts.get(subject.site.site_id, 0) + 1
    return counts
