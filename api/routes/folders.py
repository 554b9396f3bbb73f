from fastapi import APIRouter

from archive import cases, folders

from ..deps import CasebankDep, CredentialsDep
from ..schemas import CaseSummary, FolderOut, folder_out

router = APIRouter(tags=["folders"])


@router.get("/api/folders", response_model=list[FolderOut])
def list_folders(cb: CasebankDep, credentials: CredentialsDep) -> list[FolderOut]:
    """The folders the caller may view, with the caller's rights on each."""
    with cb.database.session() as session:
        user = credentials.user(session)
        return [folder_out(session, f, r) for f, r in folders.list_visible_folders(session, user)]


@router.get("/api/folders/{folder_id}", response_model=FolderOut)
def read_folder(folder_id: int, cb: CasebankDep, credentials: CredentialsDep) -> FolderOut:
    with cb.database.session() as session:
        user = credentials.user(session)
        folder = folders.get_folder(session, user, folder_id)
        return folder_out(session, folder, folders.rights_on(session, user, folder))


@router.get("/api/folders/{folder_id}/cases", response_model=list[CaseSummary])
def list_folder_cases(folder_id: int, cb: CasebankDep, credentials: CredentialsDep) -> list[CaseSummary]:
    with cb.database.session() as session:
        user = credentials.user(session)
        return [
            CaseSummary.model_validate(c, from_attributes=True)
            for c in cases.list_cases(session, user, folder_id)
        ]
