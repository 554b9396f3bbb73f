"""Reading and editing cases, with the folder's rights checked for every call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from terminology import canonical_system

from . import audit
from .catalogue import checked_values
from .db import mark_case_changed
from .errors import NotFound
from .folders import get_folder, not_found, require
from .models import Case, CaseStatus, CodedEntry, Instance, Study, User

TEXT_FIELDS = ("title", "history", "findings", "diagnosis", "differential", "discussion")


@dataclass(frozen=True)
class Code:
    system: str
    code: str
    display: str = ""


@dataclass(frozen=True)
class CaseUpdate:
    """Fields left as None are not changed."""

    title: str | None = None
    history: str | None = None
    findings: str | None = None
    diagnosis: str | None = None
    differential: str | None = None
    discussion: str | None = None
    keywords: Sequence[str] | None = None
    codes: Sequence[Code] | None = None
    custom_fields: dict[str, object] | None = None


def _load(session: Session, case_id: int) -> Case:
    case = session.get(
        Case,
        case_id,
        options=[selectinload(Case.codes), selectinload(Case.studies).selectinload(Study.series)],
    )
    if case is None:
        raise NotFound(not_found(f"case {case_id}"))
    return case


def get_case(session: Session, user: User, case_id: int) -> Case:
    case = _load(session, case_id)
    require(session, user, case.folder, "view", subject=f"case {case_id}")
    return case


def list_cases(session: Session, user: User, folder_id: int) -> list[Case]:
    folder = get_folder(session, user, folder_id)
    return list(session.scalars(select(Case).where(Case.folder_id == folder.id).order_by(Case.id.desc())))


def create_case(session: Session, user: User, folder_id: int, content: CaseUpdate) -> Case:
    """A case made by hand (images can follow); needs edit rights on the folder."""
    folder = get_folder(session, user, folder_id)
    require(session, user, folder, "edit")
    case = Case(folder_id=folder.id, title="", author_name=user.display_name, author_gmc=user.gmc)
    session.add(case)
    session.flush()
    audit.record(session, user, "case.created", "case", case.id, folder_id=folder.id)
    return update_case(session, user, case.id, content)


def update_case(session: Session, user: User, case_id: int, update: CaseUpdate) -> Case:
    case = _load(session, case_id)
    require(session, user, case.folder, "edit", subject=f"case {case_id}")
    changed: list[str] = []
    for field in fields(update):
        value = getattr(update, field.name)
        if value is None:
            continue
        if field.name == "codes":
            case.codes = [CodedEntry(system=c.system, code=c.code, display=c.display) for c in value]
        elif field.name == "keywords":
            case.keywords = [k.strip() for k in value if k.strip()]
        elif field.name == "custom_fields":
            case.custom_fields = checked_values(session, case.folder, dict(value))
        else:
            setattr(case, field.name, value)
        changed.append(field.name)
    if changed:
        if case.status in (CaseStatus.PENDING, CaseStatus.NEEDS_DETAILS) and case.title and (case.findings or case.diagnosis):
            case.status = CaseStatus.COMPLETE
        session.flush()
        audit.record(session, user, "case.updated", "case", case.id, fields=changed)
        mark_case_changed(session, case.id)
    return case


def get_instance(session: Session, user: User, instance_id: int) -> Instance:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(not_found(f"instance {instance_id}"))
    require(session, user, instance.series.study.case.folder, "view", subject=f"instance {instance_id}")
    return instance


def cases_for_indexing(session: Session, case_ids: set[int]) -> list[Case]:
    """Cases with everything the index document needs; no rights check (the index filters by folder)."""
    return list(
        session.scalars(
            select(Case)
            .where(Case.id.in_(case_ids))
            .options(
                selectinload(Case.codes),
                selectinload(Case.studies).selectinload(Study.series),
            )
        )
    )


def requeue_cases_coded_in(session: Session, system: str) -> int:
    """Queue every case with a code of ``system`` for indexing again (a terminology was loaded:
    its ancestors and synonyms change what those cases are found by). Returns how many."""
    wanted = canonical_system(system)
    rows = session.execute(select(CodedEntry.case_id, CodedEntry.system).distinct()).all()
    case_ids = {case_id for case_id, designator in rows if canonical_system(designator) == wanted}
    for case_id in case_ids:
        mark_case_changed(session, case_id)
    return len(case_ids)
