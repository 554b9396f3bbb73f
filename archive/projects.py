"""Research projects and clinical trials: members and their roles, enrolled sites, time points.

A project owns two folders: its collection (where routed cases live) and its hold (submissions
from sites not enrolled, or that cannot be matched, waiting for a coordinator). Rights on both
come from membership alone: an admin creates projects and may manage their members, but sees
no project case without being a member. The archive holds pseudonyms only; the key that could
re-identify them stays with the custodian at the edge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .errors import InvalidInput, NotFound, NotPermitted
from .models import (
    Folder,
    FolderKind,
    Project,
    ProjectMember,
    ProjectRole,
    TimePoint,
    TrialSite,
    User,
)

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # as the edge names projects
DICOM_LO = re.compile(r"^[^\\\x00-\x1f]{1,64}$")
RESEARCH_HOLD = "Research hold"

ROLE_LABELS = {
    ProjectRole.PRINCIPAL_INVESTIGATOR: "principal investigator",
    ProjectRole.COORDINATOR: "coordinator",
    ProjectRole.RESEARCHER: "researcher",
    ProjectRole.SITE_UPLOADER: "site uploader",
    ProjectRole.VIEWER: "viewer",
}
MANAGERS = frozenset({ProjectRole.PRINCIPAL_INVESTIGATOR})
COORDINATORS = frozenset({ProjectRole.PRINCIPAL_INVESTIGATOR, ProjectRole.COORDINATOR})
READERS = frozenset({ProjectRole.PRINCIPAL_INVESTIGATOR, ProjectRole.COORDINATOR, ProjectRole.RESEARCHER,
                     ProjectRole.VIEWER})


@dataclass(frozen=True)
class ProjectFolders:
    collection: Folder
    hold: Folder


def parse_role(text: str) -> ProjectRole:
    wanted = text.strip().lower().replace(" ", "_").replace("-", "_")
    aliases = {"principal_investigator": ProjectRole.PRINCIPAL_INVESTIGATOR, "pi": ProjectRole.PRINCIPAL_INVESTIGATOR,
               "site": ProjectRole.SITE_UPLOADER, "uploader": ProjectRole.SITE_UPLOADER}
    for role in ProjectRole:
        if wanted in (role.value, role.name.lower()):
            return role
    if wanted in aliases:
        return aliases[wanted]
    raise InvalidInput(f"role {text!r} must be one of: {', '.join(ROLE_LABELS.values())}")


def role_of(session: Session, project: Project, user: User) -> ProjectRole | None:
    return session.scalar(select(ProjectMember.role).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == user.id
    ))


def _lo(label: str, value: str, *, required: bool = True) -> str:
    value = value.strip()
    if not value and not required:
        return ""
    if not DICOM_LO.match(value):
        raise InvalidInput(f"{label} {value!r} must be 1-64 characters without a backslash")
    return value


def create_project(
    session: Session, actor: User, name: str, *, protocol_id: str, title: str = "", protocol_name: str = "",
    sponsor: str = "", coordinating_center: str = "", description: str = "", dates_shifted: bool = True,
    principal_investigator: User | None = None,
) -> Project:
    """A new project with its collection and hold folders; admins only."""
    if not actor.is_admin:
        raise NotPermitted(f"{actor.username} may not create projects; only admins may")
    name = name.strip()
    if not PROJECT_NAME.match(name):
        raise InvalidInput(f"project name {name!r} must be letters, digits, '-' or '_' (as the edge names it)")
    protocol_id = _lo("Clinical Trial Protocol ID", protocol_id)
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise InvalidInput(f"a project named {name} already exists")
    if session.scalar(select(Project.id).where(Project.protocol_id == protocol_id)) is not None:
        raise InvalidInput(f"protocol ID {protocol_id} already belongs to another project")
    project = Project(
        name=name, protocol_id=protocol_id, title=title.strip() or name, protocol_name=protocol_name.strip(),
        sponsor=sponsor.strip(), coordinating_center=coordinating_center.strip(), description=description.strip(),
        dates_shifted=dates_shifted,
    )
    session.add(project)
    session.flush()
    collection = Folder(name=f"Project {name}", kind=FolderKind.PROJECT, project_id=project.id)
    session.add(collection)
    session.flush()
    session.add(Folder(name="Held", kind=FolderKind.HOLD, project_id=project.id, parent_id=collection.id))
    session.flush()
    audit.record(session, actor, "project.created", "project", project.id, name=name, protocol_id=protocol_id)
    if principal_investigator is not None:
        set_member(session, actor, project, principal_investigator, ProjectRole.PRINCIPAL_INVESTIGATOR)
    return project


def folders_of(session: Session, project: Project) -> ProjectFolders:
    rows = {f.kind: f for f in session.scalars(select(Folder).where(Folder.project_id == project.id))}
    return ProjectFolders(rows[FolderKind.PROJECT], rows[FolderKind.HOLD])


def research_hold(session: Session) -> Folder:
    """Where research objects wait when no project claims them: admins only."""
    folder = session.scalar(select(Folder).where(Folder.kind == FolderKind.HOLD, Folder.project_id.is_(None)))
    if folder is None:
        folder = Folder(name=RESEARCH_HOLD, kind=FolderKind.HOLD)
        session.add(folder)
        session.flush()
    return folder


def project_by_name(session: Session, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name.strip()))


def project_by_protocol(session: Session, protocol_id: str) -> Project | None:
    return session.scalar(select(Project).where(Project.protocol_id == protocol_id.strip()))


def get_project(session: Session, user: User, project_id: int | str) -> Project:
    """A project its member (or an admin, who manages it) may see; anyone else gets NotFound.

    ``project_id`` is the numeric ID or the project's name."""
    project = (session.get(Project, int(project_id)) if str(project_id).isdigit()
               else project_by_name(session, str(project_id)))
    if project is None or not (user.is_admin or role_of(session, project, user) is not None):
        raise NotFound(f"project {project_id} does not exist")
    return project


def require_role(session: Session, user: User, project: Project, roles: frozenset[ProjectRole], doing: str) -> None:
    role = role_of(session, project, user)
    if role is None and not user.is_admin:
        raise NotFound(f"project {project.id} does not exist")
    if role not in roles:
        raise NotPermitted(f"{user.username} may not {doing} in project {project.name}")


def may_manage(session: Session, user: User, project: Project) -> bool:
    """Admins and principal investigators manage members, sites and time points."""
    return user.is_admin or role_of(session, project, user) in MANAGERS


def require_manager(session: Session, user: User, project: Project, doing: str) -> None:
    if not may_manage(session, user, project):
        get_project(session, user, project.id)  # a non-member learns nothing
        raise NotPermitted(f"{user.username} may not {doing} in project {project.name}; its principal investigator may")


def projects_of(session: Session, user: User) -> list[tuple[Project, ProjectRole | None]]:
    """The projects `user` belongs to, with the role; admins see every project (role None if not a member)."""
    roles = dict(session.execute(select(ProjectMember.project_id, ProjectMember.role)
                                 .where(ProjectMember.user_id == user.id)).all())
    query = select(Project).order_by(Project.name)
    if not user.is_admin:
        query = query.where(Project.id.in_(roles))
    return [(p, roles.get(p.id)) for p in session.scalars(query)]


def members_of(session: Session, project: Project) -> list[ProjectMember]:
    return list(session.scalars(select(ProjectMember).where(ProjectMember.project_id == project.id)
                                .join(User, User.id == ProjectMember.user_id).order_by(User.username)))


def set_member(
    session: Session, actor: User, project: Project, member: User, role: ProjectRole, site: TrialSite | None = None,
) -> ProjectMember:
    """Add `member` with `role` (or change their role); admins and the PI may."""
    require_manager(session, actor, project, "add members")
    if role is ProjectRole.SITE_UPLOADER and site is None:
        raise InvalidInput("a site uploader sends for one site: name it")
    if site is not None and site.project_id != project.id:
        raise InvalidInput(f"site {site.site_id} is not enrolled in project {project.name}")
    row = session.scalar(select(ProjectMember).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == member.id))
    if row is None:
        row = ProjectMember(project_id=project.id, user_id=member.id, role=role)
        session.add(row)
    row.role, row.site_id = role, site.id if site is not None else None
    session.flush()
    audit.record(session, actor, "project.member_set", "project", project.id, member=member.username,
                 role=role.value, site=site.site_id if site else "")
    return row


def remove_member(session: Session, actor: User, project: Project, member: User) -> None:
    require_manager(session, actor, project, "remove members")
    row = session.scalar(select(ProjectMember).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == member.id))
    if row is not None:
        session.delete(row)
        session.flush()
        audit.record(session, actor, "project.member_removed", "project", project.id, member=member.username)


def enrol_site(
    session: Session, actor: User, project: Project, site_id: str, *, name: str = "", contact_email: str = "",
    ae_titles: list[str] | tuple[str, ...] = (),
) -> TrialSite:
    """Enrol a site (or change it): its Clinical Trial Site ID, contact and the edges that send for it."""
    require_manager(session, actor, project, "enrol sites")
    site_id = _lo("Clinical Trial Site ID", site_id)
    titles = [t.strip() for t in ae_titles if t.strip()]
    for title in titles:
        if len(title) > 16 or "\\" in title:
            raise InvalidInput(f"AE title {title!r} must be 1-16 characters with no backslash")
    site = session.scalar(select(TrialSite).where(TrialSite.project_id == project.id, TrialSite.site_id == site_id))
    if site is None:
        site = TrialSite(project_id=project.id, site_id=site_id)
        session.add(site)
    site.name, site.contact_email, site.ae_titles = name.strip() or site_id, contact_email.strip(), titles
    session.flush()
    audit.record(session, actor, "project.site_enrolled", "project", project.id, site=site_id, ae_titles=titles)
    return site


def sites_of(session: Session, project: Project) -> list[TrialSite]:
    return list(session.scalars(select(TrialSite).where(TrialSite.project_id == project.id).order_by(TrialSite.site_id)))


def site_by_id(session: Session, project: Project, site_id: str) -> TrialSite:
    site = session.scalar(select(TrialSite).where(TrialSite.project_id == project.id, TrialSite.site_id == site_id.strip()))
    if site is None:
        raise NotFound(f"site {site_id} is not enrolled in project {project.name}")
    return site


def parse_expected_series(text: str) -> dict[str, str]:
    """'CT:*chest*' -> {"modality": "CT", "description": "*chest*"}; 'MR' -> any description."""
    modality, _, description = text.partition(":")
    modality = modality.strip().upper()
    if not re.fullmatch(r"[A-Z]{1,16}", modality):
        raise InvalidInput(f"expected series {text!r} must look like MODALITY or MODALITY:DESCRIPTION-PATTERN (CT:*chest*)")
    return {"modality": modality, "description": description.strip() or "*"}


def define_time_point(
    session: Session, actor: User, project: Project, code: str, *, label: str = "", position: int | None = None,
    day: int | None = None, window_days: int | None = None, expected_series: list[dict[str, str]] | None = None,
) -> TimePoint:
    """A time point of the protocol (Clinical Trial Time Point ID) with the series it expects."""
    require_manager(session, actor, project, "define time points")
    code = _lo("Clinical Trial Time Point ID", code)
    if (day is None) != (window_days is None) and window_days is not None:
        raise InvalidInput("a window needs the nominal day it is around")
    point = session.scalar(select(TimePoint).where(TimePoint.project_id == project.id, TimePoint.code == code))
    if point is None:
        count = len(time_points_of(session, project))
        point = TimePoint(project_id=project.id, code=code, position=count)
        session.add(point)
    point.label = label.strip() or code
    if position is not None:
        point.position = position
    point.day, point.window_days = day, window_days
    point.expected_series = [parse_expected_series(f"{e['modality']}:{e.get('description', '*')}") for e in expected_series or []]
    session.flush()
    audit.record(session, actor, "project.time_point_defined", "project", project.id, code=code,
                 expected=point.expected_series)
    return point


def time_points_of(session: Session, project: Project) -> list[TimePoint]:
    return list(session.scalars(select(TimePoint).where(TimePoint.project_id == project.id)
                                .order_by(TimePoint.position, TimePoint.id)))


def project_folder_ids(session: Session) -> set[int]:
    """Every folder that belongs to a research project or holds research objects."""
    return set(session.scalars(select(Folder.id).where(
        Folder.project_id.is_not(None) | (Folder.kind == FolderKind.HOLD)
    )))
