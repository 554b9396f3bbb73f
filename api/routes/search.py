"""GET /api/search: faceted full-text search over the cases the caller may view."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.errors import InvalidInput
from archive.folders import folder_path
from archive.models import Folder
from search.index import SORTS, SearchResult, SearchUnavailable
from search.query import QueryError
from search.service import MAX_PAGE_SIZE, SearchRequest, search_cases

from ..deps import CasebankDep, CredentialsDep
from ..schemas import FacetValueOut, FolderRef, SearchHitOut, SearchOut

router = APIRouter(tags=["search"])


@router.get("/api/search", response_model=SearchOut)
def search(
    cb: CasebankDep,
    credentials: CredentialsDep,
    q: str = Query("", max_length=1000, description='words, "phrases", prefix*, fuzzy~, field:term, AND / OR / NOT'),
    filter: list[str] = Query([], description="FIELD:VALUE, repeatable; code:SYSTEM|CODE matches descendants"),  # noqa: A002
    facet: list[str] = Query([], description="fields to count: modality, body_part, icd10_chapter, custom.NAME, ..."),
    sort: str = Query("relevance", description=" / ".join(SORTS)),
    page: int = Query(1, ge=1),
    size: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
) -> SearchOut:
    """Cases matching `q` and every filter, in the folders the caller may view, with facet counts."""
    request = SearchRequest(q, tuple(filter), tuple(facet), sort, page, size)
    with cb.database.session() as session:
        try:
            result = search_cases(session, cb.index, credentials.user(session), request)
        except QueryError as exc:
            raise InvalidInput(str(exc)) from exc
        except SearchUnavailable as exc:
            raise HTTPException(503, f"search is unavailable for now; nothing is lost: {exc}") from exc
        return render_result(session, cb, result, page, size)


def render_result(session: Session, cb, result: SearchResult, page: int, size: int) -> SearchOut:  # type: ignore[no-untyped-def]
    folder_ids = {h.folder_id for h in result.hits} | {int(v.value) for v in result.facets.get("folder", [])}
    paths = {f.id: folder_path(session, f) for f in session.scalars(select(Folder).where(Folder.id.in_(folder_ids)))}
    return SearchOut(
        total=result.total, page=page, size=size,
        hits=[SearchHitOut(case_id=h.case_id, title=h.title, snippet=h.snippet,
                           folder=FolderRef(id=h.folder_id, path=paths.get(h.folder_id, ""))) for h in result.hits],
        facets={name: [FacetValueOut(value=v.value, count=v.count, label=facet_label(cb, name, v.value, paths))
                       for v in values] for name, values in result.facets.items()},
    )


CODED_FACETS = {"icd10": "ICD10", "icd10_chapter": "ICD10", "icd10_block": "ICD10", "snomed": "SNOMED", "acr": "ACR"}


def facet_label(cb, name: str, value: str, paths: dict[int, str]) -> str:  # type: ignore[no-untyped-def]
    if name == "folder":
        return paths.get(int(value), "")
    system = CODED_FACETS.get(name)
    if system is None:
        return ""
    concept = cb.terminology.lookup(system, value)
    return concept.display if concept is not None else ""
