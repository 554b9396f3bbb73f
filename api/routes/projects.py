"""REST for research projects, clinical trials and cohorts. Thin: every rule is in the domain
(`archive.projects`, `archive.trials`, `archive.cohorts`); a non-member gets 404 throughout."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from archive import cohorts, projects, trials, users
from archive.errors import InvalidInput
from archive.models import Cohort, CohortVersion, Project, User
from search.cohorts import live_cases
from search.index import SearchUnavailable
from search.query import QueryError
from search.service import MAX_PAGE_SIZE, SearchRequest, search_cases

from ..deps import CasebankDep, CredentialsDep
from ..schemas import SearchOut
from .search import render_result

router = APIRouter(tags=["projects"])


class ProjectIn(BaseModel):
    name: str = Field(max_length=64)
    protocol_id: str = Field(max_length=64)
    title: str = Field("", max_length=200)
    protocol_name: str = Field("", max_length=200)
    sponsor: str = Field("", max_length=200)
    coordinating_center: str = Field("", max_length=200)
    description: str = Field("", max_length=10_000)
    dates_shifted: bool = True
    principal_investigator: str = Field("", max_length=64, description="user name of the PI")


class ProjectOut(BaseModel):
    id: int
    name: str
    title: str
    protocol_id: str
    protocol_name: str
    sponsor: str
    coordinating_center: str
    dates_shifted: bool
    role: str | None  # the caller's role; None for an admin who is not a member


class MemberIn(BaseModel):
    role: str = Field(description="pi, coordinator, researcher, site_uploader or viewer")
    site: str = Field("", max_length=64, description="a site uploader's Clinical Trial Site ID")


class MemberOut(BaseModel):
    username: str
    display_name: str
    role: str
    site: str


class SiteIn(BaseModel):
    name: str = Field("", max_length=200)
    contact_email: str = Field("", max_length=320)
    ae_titles: list[str] = Field(default_factory=list, description="calling AE titles of the edges that send for the site")


class SiteOut(BaseModel):
    site_id: str
    name: str
    contact_email: str
    ae_titles: list[str]


class TimePointIn(BaseModel):
    label: str = Field("", max_length=200)
    position: int | None = None
    day: int | None = Field(None, description="nominal days after the first time point")
    window_days: int | None = None
    expected_series: list[str] = Field(default_factory=list, description='"MODALITY" or "MODALITY:DESCRIPTION-PATTERN"')


class TimePointOut(BaseModel):
    code: str
    label: str
    position: int
    day: int | None
    window_days: int | None
    expected_series: list[dict[str, str]]


class CellOut(BaseModel):
    state: str
    submission_id: int
    case_id: int | None
    reasons: list[str]
    study_date: str
    superseded: int


class MatrixRowOut(BaseModel):
    subject_id: str
    site: str
    cells: dict[str, CellOut]


class MatrixOut(BaseModel):
    time_points: list[str]
    unknown_time_points: list[str]
    rows: list[MatrixRowOut]


class QcIn(BaseModel):
    passed: bool
    reason: str = Field("", max_length=2000)


class HeldOut(BaseModel):
    case_id: int
    title: str
    notice: str
    received_at: datetime


class CohortIn(BaseModel):
    name: str = Field(max_length=200)
    project: str = Field("", description="project name or ID; empty: a cohort over your teaching folders")
    text: str = Field("", max_length=1000)
    filters: list[str] = Field(default_factory=list)


class VersionOut(BaseModel):
    number: int
    frozen_at: datetime
    frozen_by: str
    note: str
    query: dict[str, object]
    case_ids: list[int]
    instances: int


class CohortOut(BaseModel):
    id: int
    name: str
    project: str | None
    text: str
    filters: list[str]
    live_case_ids: list[int]
    versions: list[VersionOut]


class FreezeIn(BaseModel):
    note: str = Field("", max_length=2000)


class DiffEntryOut(BaseModel):
    case_id: int
    title: str


class DiffOut(BaseModel):
    base: int
    other: str  # a version number, or "live"
    added: list[DiffEntryOut]
    removed: list[DiffEntryOut]
    changed: list[DiffEntryOut]


def project_out(session: Session, project: Project, user: User) -> ProjectOut:
    role = projects.role_of(session, project, user)
    return ProjectOut(id=project.id, name=project.name, title=project.title, protocol_id=project.protocol_id,
                      protocol_name=project.protocol_name, sponsor=project.sponsor,
                      coordinating_center=project.coordinating_center, dates_shifted=project.dates_shifted,
                      role=role.value if role else None)


@router.get("/api/projects", response_model=list[ProjectOut])
def list_projects(cb: CasebankDep, credentials: CredentialsDep) -> list[ProjectOut]:
    with cb.database.session() as session:
        user = credentials.user(session)
        return [project_out(session, p, user) for p, _ in projects.projects_of(session, user)]


@router.post("/api/projects", response_model=ProjectOut, status_code=201)
def create_project(body: ProjectIn, cb: CasebankDep, credentials: CredentialsDep) -> ProjectOut:
    """Admins create projects (with their collection and hold folders)."""
    with cb.database.session() as session:
        user = credentials.user(session)
        pi = users.get_user(session, body.principal_investigator) if body.principal_investigator else None
        project = projects.create_project(
            session, user, body.name, protocol_id=body.protocol_id, title=body.title, protocol_name=body.protocol_name,
            sponsor=body.sponsor, coordinating_center=body.coordinating_center, description=body.description,
            dates_shifted=body.dates_shifted, principal_investigator=pi,
        )
        return project_out(session, project, user)


@router.get("/api/projects/{project_id}", response_model=ProjectOut)
def read_project(project_id: str, cb: CasebankDep, credentials: CredentialsDep) -> ProjectOut:
    with cb.database.session() as session:
        user = credentials.user(session)
        return project_out(session, projects.get_project(session, user, project_id), user)


@router.get("/api/projects/{project_id}/members", response_model=list[MemberOut])
def list_members(project_id: str, cb: CasebankDep, credentials: CredentialsDep) -> list[MemberOut]:
    with cb.database.session() as session:
        project = projects.get_project(session, credentials.user(session), project_id)
        sites = {s.id: s.site_id for s in projects.sites_of(session, project)}
        return [MemberOut(username=m.user.username, display_name=m.user.display_name, role=m.role.value,
                          site=sites.get(m.site_id or 0, "")) for m in projects.members_of(session, project)]


@router.put("/api/projects/{project_id}/members/{username}", response_model=MemberOut)
def set_member(project_id: str, username: str, body: MemberIn, cb: CasebankDep, credentials: CredentialsDep) -> MemberOut:
    """Admins and the principal investigator add members or change their role."""
    with cb.database.session() as session:
        actor = credentials.user(session)
        project = projects.get_project(session, actor, project_id)
        projects.require_manager(session, actor, project, "add members")  # before looking the name up
        role = projects.parse_role(body.role)
        site = projects.site_by_id(session, project, body.site) if body.site else None
        member = users.get_user(session, username)
        row = projects.set_member(session, actor, project, member, role, site)
        return MemberOut(username=member.username, display_name=member.display_name, role=row.role.value,
                         site=site.site_id if site else "")


@router.delete("/api/projects/{project_id}/members/{username}", status_code=204)
def remove_member(project_id: str, username: str, cb: CasebankDep, credentials: CredentialsDep) -> None:
    with cb.database.session() as session:
        actor = credentials.user(session)
        project = projects.get_project(session, actor, project_id)
        projects.require_manager(session, actor, project, "remove members")  # before looking the name up
        projects.remove_member(session, actor, project, users.get_user(session, username))


def site_out(site) -> SiteOut:  # type: ignore[no-untyped-def]
    return SiteOut(site_id=site.site_id, name=site.name, contact_email=site.contact_email, ae_titles=list(site.ae_titles or []))


@router.get("/api/projects/{project_id}/sites", response_model=list[SiteOut])
def list_sites(project_id: str, cb: CasebankDep, credentials: CredentialsDep) -> list[SiteOut]:
    with cb.database.session() as session:
        project = projects.get_project(session, credentials.user(session), project_id)
        return [site_out(s) for s in projects.sites_of(session, project)]


@router.put("/api/projects/{project_id}/sites/{site_id}", response_model=SiteOut)
def enrol_site(project_id: str, site_id: str, body: SiteIn, cb: CasebankDep, credentials: CredentialsDep) -> SiteOut:
    """Enrol a site: its ID as the edges write it, a contact for QC mail, and the edges' AE titles."""
    with cb.database.session() as session:
        actor = credentials.user(session)
        project = projects.get_project(session, actor, project_id)
        return site_out(projects.enrol_site(session, actor, project, site_id, name=body.name,
                                            contact_email=body.contact_email, ae_titles=body.ae_titles))


def time_point_out(point) -> TimePointOut:  # type: ignore[no-untyped-def]
    return TimePointOut(code=point.code, label=point.label, position=point.position, day=point.day,
                        window_days=point.window_days, expected_series=list(point.expected_series or []))


@router.get("/api/projects/{project_id}/time-points", response_model=list[TimePointOut])
def list_time_points(project_id: str, cb: CasebankDep, credentials: CredentialsDep) -> list[TimePointOut]:
    with cb.database.session() as session:
        project = projects.get_project(session, credentials.user(session), project_id)
        return [time_point_out(p) for p in projects.time_points_of(session, project)]


@router.put("/api/projects/{project_id}/time-points/{code}", response_model=TimePointOut)
def define_time_point(project_id: str, code: str, body: TimePointIn, cb: CasebankDep,
                      credentials: CredentialsDep) -> TimePointOut:
    with cb.database.session() as session:
        actor = credentials.user(session)
        project = projects.get_project(session, actor, project_id)
        expected = [projects.parse_expected_series(e) for e in body.expected_series]
        return time_point_out(projects.define_time_point(
            session, actor, project, code, label=body.label, position=body.position, day=body.day,
            window_days=body.window_days, expected_series=expected))


@router.get("/api/projects/{project_id}/matrix", response_model=MatrixOut)
def read_matrix(project_id: str, cb: CasebankDep, credentials: CredentialsDep,
                site: str = Query("", max_length=64)) -> MatrixOut:
    """Subjects x time points: the current submission's QC state in each cell."""
    with cb.database.session() as session:
        user = credentials.user(session)
        grid = trials.matrix(session, user, projects.get_project(session, user, project_id), site)
        return MatrixOut(
            time_points=[p.code for p in grid.time_points], unknown_time_points=grid.unknown_time_points,
            rows=[MatrixRowOut(subject_id=r.subject.subject_id, site=r.subject.site.site_id,
                               cells={code: CellOut(state=c.state.value, submission_id=c.submission_id, case_id=c.case_id,
                                                    reasons=c.reasons, study_date=c.study_date, superseded=c.superseded)
                                      for code, c in r.cells.items()}) for r in grid.rows],
        )


@router.post("/api/projects/{project_id}/submissions/{entry_id}/qc", response_model=CellOut)
def decide_qc(project_id: str, entry_id: int, body: QcIn, cb: CasebankDep, credentials: CredentialsDep) -> CellOut:
    """A coordinator passes or fails a submission; a failure (with its reason) is mailed to the site."""
    with cb.database.session() as session:
        user = credentials.user(session)
        entry = trials.decide(session, user, projects.get_project(session, user, project_id), entry_id, body.passed, body.reason)
        return CellOut(state=entry.state.value, submission_id=entry.id, case_id=entry.case_id, reasons=list(entry.reasons),
                       study_date=entry.study_date, superseded=0)


@router.get("/api/projects/{project_id}/held", response_model=list[HeldOut])
def list_held(project_id: str, cb: CasebankDep, credentials: CredentialsDep) -> list[HeldOut]:
    """Submissions held for the coordinators (site not enrolled, subject at another site, ...)."""
    with cb.database.session() as session:
        user = credentials.user(session)
        held = trials.held_cases(session, user, projects.get_project(session, user, project_id))
        return [HeldOut(case_id=c.id, title=c.title, notice=c.notice, received_at=c.created_at) for c in held]


@router.get("/api/projects/{project_id}/search", response_model=SearchOut)
def search_project(
    project_id: str, cb: CasebankDep, credentials: CredentialsDep, q: str = Query("", max_length=1000),
    filter: list[str] = Query([]),  # noqa: A002
    facet: list[str] = Query([]), sort: str = Query("relevance"), page: int = Query(1, ge=1),
    size: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
) -> SearchOut:
    """Search inside one project (its members only); the teaching search never shows these cases."""
    with cb.database.session() as session:
        user = credentials.user(session)
        project = projects.get_project(session, user, project_id)
        try:
            result = search_cases(session, cb.index, user, SearchRequest(q, tuple(filter), tuple(facet), sort, page, size),
                                  project=project)
        except QueryError as exc:
            raise InvalidInput(str(exc)) from exc
        except SearchUnavailable as exc:
            raise HTTPException(503, f"search is unavailable for now; nothing is lost: {exc}") from exc
        return render_result(session, cb, result, page, size)


def version_out(session: Session, version: CohortVersion) -> VersionOut:
    return VersionOut(number=version.number, frozen_at=version.frozen_at, frozen_by=version.frozen_by.username,
                      note=version.note, query=dict(version.query), case_ids=[e["case_id"] for e in version.entries],
                      instances=cohorts.instance_count(version.entries))


def cohort_out(session: Session, cb, cohort: Cohort, user: User) -> CohortOut:  # type: ignore[no-untyped-def]
    project = cohorts.project_of(session, cohort)
    return CohortOut(id=cohort.id, name=cohort.name, project=project.name if project else None, text=cohort.text,
                     filters=list(cohort.filters or []), live_case_ids=[c.id for c in live_cases(session, cb.index, user, cohort)],
                     versions=[version_out(session, v) for v in cohorts.versions_of(session, cohort)])


@router.post("/api/cohorts", response_model=CohortOut, status_code=201)
def create_cohort(body: CohortIn, cb: CasebankDep, credentials: CredentialsDep) -> CohortOut:
    """Save a search as a live cohort, inside a project or over your teaching folders."""
    with cb.database.session() as session:
        user = credentials.user(session)
        project = projects.get_project(session, user, body.project) if body.project else None
        cohort = cohorts.create_cohort(session, user, body.name, project=project, text=body.text, filters=body.filters)
        return cohort_out(session, cb, cohort, user)


@router.get("/api/cohorts", response_model=list[CohortOut])
def list_cohorts(cb: CasebankDep, credentials: CredentialsDep, project: str = Query("")) -> list[CohortOut]:
    with cb.database.session() as session:
        user = credentials.user(session)
        scope = projects.get_project(session, user, project) if project else None
        return [cohort_out(session, cb, c, user) for c in cohorts.cohorts_of(session, user, scope)]


@router.get("/api/cohorts/{cohort_id}", response_model=CohortOut)
def read_cohort(cohort_id: int, cb: CasebankDep, credentials: CredentialsDep) -> CohortOut:
    with cb.database.session() as session:
        user = credentials.user(session)
        return cohort_out(session, cb, cohorts.get_cohort(session, user, cohort_id), user)


@router.post("/api/cohorts/{cohort_id}/versions", response_model=VersionOut, status_code=201)
def freeze_cohort(cohort_id: int, body: FreezeIn, cb: CasebankDep, credentials: CredentialsDep) -> VersionOut:
    """Freeze the live cohort into a new version: exactly its cases and instances now, never changed."""
    with cb.database.session() as session:
        user = credentials.user(session)
        cohort = cohorts.get_cohort(session, user, cohort_id)
        version = cohorts.freeze(session, user, cohort, live_cases(session, cb.index, user, cohort), body.note)
        return version_out(session, version)


@router.get("/api/cohorts/{cohort_id}/versions/{number}", response_model=VersionOut)
def read_version(cohort_id: int, number: int, cb: CasebankDep, credentials: CredentialsDep) -> VersionOut:
    with cb.database.session() as session:
        return version_out(session, cohorts.get_version(session, credentials.user(session), cohort_id, number))


@router.get("/api/cohorts/{cohort_id}/diff", response_model=DiffOut)
def diff_cohort(cohort_id: int, cb: CasebankDep, credentials: CredentialsDep, base: int = Query(1, alias="from", ge=1),
                other: str = Query("live", alias="to", description="a version number, or live")) -> DiffOut:
    """What changed since version `from`: in version `to`, or in the live cohort now."""
    with cb.database.session() as session:
        user = credentials.user(session)
        cohort = cohorts.get_cohort(session, user, cohort_id)
        before = cohorts.get_version(session, user, cohort_id, base).entries
        if other == "live":
            after = [cohorts.entry_of(c) for c in live_cases(session, cb.index, user, cohort)]
        elif other.isdigit():
            after = cohorts.get_version(session, user, cohort_id, int(other)).entries
        else:
            raise InvalidInput(f"to={other!r} must be a version number or live")
        change = cohorts.diff(before, after)

        def listed(entries: list[dict]) -> list[DiffEntryOut]:  # type: ignore[type-arg]
            return [DiffEntryOut(case_id=e["case_id"], title=e["title"]) for e in entries]

        return DiffOut(base=base, other=other, added=listed(change.added), removed=listed(change.removed),
                       changed=listed(change.changed))
