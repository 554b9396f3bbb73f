"""Searching on behalf of a user: the permission filter is always part of the query."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from sqlalchemy import select

from archive.folders import visible_folder_ids
from archive.models import Folder, Project, User
from archive.projects import project_folder_ids

from .index import SORTS, SearchIndex, SearchQuery, SearchResult
from .query import QueryError

MAX_PAGE_SIZE = 100
DEFAULT_FACETS = ("modality", "body_part", "icd10_chapter", "folder", "year")


@dataclass(frozen=True)
class SearchRequest:
    """What a user asked, as the API and the search page receive it."""

    text: str = ""
    filters: tuple[str, ...] = ()  # "FIELD:VALUE"
    facets: tuple[str, ...] = ()
    sort: str = "relevance"
    page: int = 1
    size: int = 20


def parse_filter(text: str) -> tuple[str, str]:
    field, sep, value = text.partition(":")
    if not sep or not field.strip() or not value.strip():
        raise QueryError(f"filter {text!r} must look like FIELD:VALUE, e.g. modality:CT or code:ICD10|C22")
    return field.strip(), value.strip()


def scope_folder_ids(session: Session, user: User, project: Project | None = None) -> frozenset[int]:
    """The folders a search covers: the teaching folders `user` may view, never a research one;
    or, inside `project`, the project's folders `user` may view (none for a non-member)."""
    visible = visible_folder_ids(session, user)
    if project is None:
        return frozenset(visible - project_folder_ids(session))
    own = set(session.scalars(select(Folder.id).where(Folder.project_id == project.id)))
    return frozenset(visible & own)


def search_cases(
    session: Session, index: SearchIndex, user: User, request: SearchRequest, *, project: Project | None = None,
) -> SearchResult:
    """Raises QueryError for a malformed filter, facet, sort or query field.

    Without `project` only teaching folders are searched: research cases never appear there."""
    if request.sort not in SORTS:
        raise QueryError(f"sort {request.sort!r} must be one of {', '.join(SORTS)}")
    size = max(1, min(request.size, MAX_PAGE_SIZE))
    page = max(1, request.page)
    query = SearchQuery(
        folder_ids=scope_folder_ids(session, user, project),
        text=request.text,
        filters=tuple(parse_filter(f) for f in request.filters),
        facets=tuple(dict.fromkeys(request.facets)),
        sort=request.sort,
        offset=(page - 1) * size,
        limit=size,
    )
    return index.search(query)
