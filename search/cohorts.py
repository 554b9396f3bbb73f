"""A live cohort's members: its saved search run now, inside its project or its owner's teaching folders."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from archive.cohorts import project_of
from archive.models import Case, Cohort, Series, Study, User

from .index import SearchIndex, SearchQuery
from .service import parse_filter, scope_folder_ids

PAGE = 500


def live_case_ids(session: Session, index: SearchIndex, user: User, cohort: Cohort) -> list[int]:
    """Every case the cohort's search finds for `user` now, in case ID order."""
    folders = scope_folder_ids(session, user, project_of(session, cohort))
    filters = tuple(parse_filter(f) for f in cohort.filters or [])
    found: list[int] = []
    offset = 0
    while True:
        result = index.search(SearchQuery(folder_ids=folders, text=cohort.text, filters=filters,
                                          sort="date", offset=offset, limit=PAGE))
        found += [hit.case_id for hit in result.hits]
        offset += PAGE
        if offset >= result.total or not result.hits:
            break
    return sorted(set(found))


def live_cases(session: Session, index: SearchIndex, user: User, cohort: Cohort) -> list[Case]:
    """The live members as cases, re-checked against the folders `user` may see in the cohort's scope."""
    ids = live_case_ids(session, index, user, cohort)
    folders = scope_folder_ids(session, user, project_of(session, cohort))
    if not ids:
        return []
    return list(session.scalars(
        select(Case).where(Case.id.in_(ids), Case.folder_id.in_(folders)).order_by(Case.id)
        .options(selectinload(Case.studies).selectinload(Study.series).selectinload(Series.instances))
    ))
