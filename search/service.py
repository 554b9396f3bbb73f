"""Searching on behalf of a user: the permission filter is always part of the query."""

from __future__ import annotations

from sqlalchemy.orm import Session

from archive.folders import visible_folder_ids
from archive.models import User

from .index import SearchIndex, SearchResult

MAX_PAGE_SIZE = 100


def search_cases(
    session: Session, index: SearchIndex, user: User, text: str, *, page: int = 1, size: int = 20
) -> SearchResult:
    size = max(1, min(size, MAX_PAGE_SIZE))
    page = max(1, page)
    return index.search(text, visible_folder_ids(session, user), limit=size, offset=(page - 1) * size)
