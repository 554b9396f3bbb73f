"""Cohorts: saved searches that grow as cases arrive, frozen into versions a paper can cite.

A cohort lives in a research project (its members see it; PI, coordinators and researchers make
and freeze them) or, across teaching folders, with its owner alone. Which cases a live cohort
holds is the search's business (:mod:`search.cohorts`); this module keeps what was saved and
what was frozen. A version records exactly which cases and instances (by SOP Instance UID and
content hash), who froze it and when, and never changes afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from . import audit
from .errors import ArchiveError, InvalidInput, NotFound
from .models import Case, Cohort, CohortVersion, Project, ProjectRole, User
from .projects import READERS, require_role, role_of

MAKERS = frozenset({ProjectRole.PRINCIPAL_INVESTIGATOR, ProjectRole.COORDINATOR, ProjectRole.RESEARCHER})


class CohortVersionIsFrozen(ArchiveError):
    """A frozen cohort version was about to change; versions are append-only."""


@event.listens_for(Session, "before_flush")
def _refuse_version_changes(session: Session, _context, _instances) -> None:  # type: ignore[no-untyped-def]
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, CohortVersion) and (obj in session.deleted or session.is_modified(obj)):
            raise CohortVersionIsFrozen(f"cohort version {obj.number} of cohort {obj.cohort_id} is frozen")


def create_cohort(
    session: Session, actor: User, name: str, *, project: Project | None = None, text: str = "",
    filters: list[str] | tuple[str, ...] = (),
) -> Cohort:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a cohort needs a name of 1-200 characters")
    if project is not None:
        require_role(session, actor, project, MAKERS, "make cohorts")
    bad = [f for f in filters if ":" not in f]
    if bad:
        raise InvalidInput(f"filter {bad[0]!r} must look like FIELD:VALUE")
    cohort = Cohort(name=name, project_id=project.id if project else None, owner_id=actor.id, text=text.strip(),
                    filters=[f.strip() for f in filters if f.strip()])
    session.add(cohort)
    session.flush()
    audit.record(session, actor, "cohort.created", "cohort", cohort.id, name=name, text=cohort.text,
                 filters=cohort.filters, project=project.name if project else "")
    return cohort


def get_cohort(session: Session, user: User, cohort_id: int) -> Cohort:
    """A cohort `user` may see: a member's project cohort, or one's own teaching cohort."""
    cohort = session.get(Cohort, cohort_id)
    if cohort is None or not _may_see(session, user, cohort):
        raise NotFound(f"cohort {cohort_id} does not exist")
    return cohort


def _may_see(session: Session, user: User, cohort: Cohort) -> bool:
    if cohort.project_id is None:
        return cohort.owner_id == user.id
    project = session.get_one(Project, cohort.project_id)
    return role_of(session, project, user) in READERS


def project_of(session: Session, cohort: Cohort) -> Project | None:
    return session.get(Project, cohort.project_id) if cohort.project_id else None


def cohorts_of(session: Session, user: User, project: Project | None = None) -> list[Cohort]:
    query = select(Cohort).order_by(Cohort.created_at.desc(), Cohort.id.desc())
    if project is None:
        query = query.where(Cohort.project_id.is_(None), Cohort.owner_id == user.id)
    else:
        require_role(session, user, project, READERS, "see cohorts")
        query = query.where(Cohort.project_id == project.id)
    return list(session.scalars(query))


def versions_of(session: Session, cohort: Cohort) -> list[CohortVersion]:
    return list(session.scalars(select(CohortVersion).where(CohortVersion.cohort_id == cohort.id)
                                .order_by(CohortVersion.number)))


def get_version(session: Session, user: User, cohort_id: int, number: int) -> CohortVersion:
    cohort = get_cohort(session, user, cohort_id)
    version = session.scalar(select(CohortVersion).where(CohortVersion.cohort_id == cohort.id,
                                                         CohortVersion.number == number))
    if version is None:
        raise NotFound(f"cohort {cohort_id} has no version {number}")
    return version


def entry_of(case: Case) -> dict:  # type: ignore[type-arg]
    """What a version records of one case: every study, series and instance as it is now."""
    return {
        "case_id": case.id,
        "title": case.title,
        "studies": [{
            "study_instance_uid": st.study_instance_uid, "study_date": st.study_date, "description": st.description,
            "trial": dict(st.trial or {}),
            "series": [{
                "series_instance_uid": se.series_instance_uid, "modality": se.modality, "description": se.description,
                "series_number": se.series_number,
                "instances": [[i.sop_instance_uid, i.sop_class_uid, i.blob_sha256, i.size_bytes, i.transfer_syntax_uid]
                              for i in se.instances],
            } for se in st.series],
        } for st in case.studies],
    }


def freeze(session: Session, actor: User, cohort: Cohort, cases: list[Case], note: str = "") -> CohortVersion:
    """A new version holding exactly `cases` as they are now (the live members the caller found)."""
    if cohort.project_id is not None:
        require_role(session, actor, session.get_one(Project, cohort.project_id), MAKERS, "freeze cohorts")
    elif cohort.owner_id != actor.id:
        raise NotFound(f"cohort {cohort.id} does not exist")
    number = (session.scalar(select(func.max(CohortVersion.number)).where(CohortVersion.cohort_id == cohort.id)) or 0) + 1
    version = CohortVersion(
        cohort_id=cohort.id, number=number, frozen_by_id=actor.id, note=note.strip(),
        query={"text": cohort.text, "filters": list(cohort.filters or [])},
        entries=[entry_of(case) for case in sorted(cases, key=lambda c: c.id)],
    )
    session.add(version)
    session.flush()
    audit.record(session, actor, "cohort.frozen", "cohort", cohort.id, version=number, cases=[c.id for c in cases])
    return version


def instance_count(entries: list[dict]) -> int:  # type: ignore[type-arg]
    return sum(len(se["instances"]) for e in entries for st in e["studies"] for se in st["series"])


@dataclass
class Diff:
    added: list[dict] = field(default_factory=list)  # type: ignore[type-arg]
    removed: list[dict] = field(default_factory=list)  # type: ignore[type-arg]
    changed: list[dict] = field(default_factory=list)  # type: ignore[type-arg]  # same case, other instances


def diff(before: list[dict], after: list[dict]) -> Diff:  # type: ignore[type-arg]
    """What `after` adds, removes and changes against `before` (lists of version entries)."""
    old = {e["case_id"]: e for e in before}
    new = {e["case_id"]: e for e in after}

    def instances(entry: dict) -> set[str]:  # type: ignore[type-arg]
        return {i[0] for st in entry["studies"] for se in st["series"] for i in se["instances"]}

    return Diff(
        added=[new[i] for i in sorted(new.keys() - old.keys())],
        removed=[old[i] for i in sorted(old.keys() - new.keys())],
        changed=[new[i] for i in sorted(new.keys() & old.keys()) if instances(new[i]) != instances(old[i])],
    )
