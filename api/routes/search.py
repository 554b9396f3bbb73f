from fastapi import APIRouter, Query
from sqlalchemy import select

from archive.models import Folder
from archive.folders import folder_path
from search.service import MAX_PAGE_SIZE, search_cases

from ..deps import CasebankDep, CredentialsDep
from ..schemas import FolderRef, SearchHitOut, SearchOut

router = APIRouter(tags=["search"])


@router.get("/api/search", response_model=SearchOut)
def search(
    cb: CasebankDep,
    credentials: CredentialsDep,
    q: str = Query("", max_length=1000, description="words, \"phrases\", field:term, AND / OR / NOT"),
    page: int = Query(1, ge=1),
    size: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
) -> SearchOut:
    """Cases matching `q` in the folders the caller may view."""
    with cb.database.session() as session:
        result = search_cases(session, cb.index, credentials.user(session), q, page=page, size=size)
        folder_ids = {h.folder_id for h in result.hits}
        paths = {
            f.id: folder_path(session, f)
            for f in session.scalars(select(Folder).where(Folder.id.in_(folder_ids)))
        }
    return SearchOut(
        total=result.total,
        hits=[
            SearchHitOut(case_id=h.case_id, title=h.title, folder=FolderRef(id=h.folder_id, path=paths.get(h.folder_id, "")))
            for h in result.hits
        ],
    )
