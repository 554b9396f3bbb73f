"""Form actions of the case page: like, add or remove a coded entry (looked up in the terminology,
so the display is the code system's own), and upload or remove an attachment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from archive import case_extras, cases, copying, folders
from archive.cases import CaseUpdate, Code
from archive.errors import InvalidInput
from terminology import TerminologyError, canonical_system

from ..deps import CasebankDep, CredentialsDep

router = APIRouter(include_in_schema=False)
CODE_SYSTEMS = ("ICD10", "SNOMED", "ACR", "RADLEX")


def _back(case_id: int, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/cases/{case_id}{anchor}", status_code=303)


@router.post("/cases/{case_id}/like")
def toggle_like(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        case_extras.set_like(session, credentials.user(session), case_id, None)  # toggles
    return _back(case_id)


@router.post("/cases/{case_id}/codes")
def add_code(case_id: int, cb: CasebankDep, credentials: CredentialsDep,
             system: Annotated[str, Form()], code: Annotated[str, Form()]) -> Response:
    """``code`` is a code, or "CODE display" as the autocomplete fills it in."""
    system = canonical_system(system)
    value = code.strip().split(" ", 1)[0]
    try:
        concept = cb.terminology.lookup(system, value)
    except TerminologyError as exc:
        raise InvalidInput(str(exc)) from exc
    if concept is None:
        raise InvalidInput(f"{system} has no code {value!r}" + ("" if system == "ICD10" else
                           f" (is {system} loaded? casebank terminology load {system} PATH)"))
    with cb.database.session() as session:
        user = credentials.user(session)
        case = cases.get_case(session, user, case_id)
        folders.require(session, user, case.folder, "edit")  # even when the code is there already
        current = [Code(c.system, c.code, c.display) for c in case.codes]
        if not any(canonical_system(c.system) == system and c.code == concept.code for c in current):
            cases.update_case(session, user, case_id, CaseUpdate(codes=[*current, Code(system, concept.code, concept.display)]))
    return _back(case_id, "#codes")


@router.post("/cases/{case_id}/codes/remove")
def remove_code(case_id: int, cb: CasebankDep, credentials: CredentialsDep,
                system: Annotated[str, Form()], code: Annotated[str, Form()]) -> Response:
    with cb.database.session() as session:
        user = credentials.user(session)
        case = cases.get_case(session, user, case_id)
        kept = [Code(c.system, c.code, c.display) for c in case.codes if not (c.system == system and c.code == code)]
        cases.update_case(session, user, case_id, CaseUpdate(codes=kept))
    return _back(case_id, "#codes")


@router.post("/cases/{case_id}/custom")
async def save_custom_fields(case_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    """The folder's catalogue fields, posted as ``cf_NAME``; the domain checks and types them."""
    form = await request.form()
    values = {key[3:]: str(value) for key, value in form.items() if key.startswith("cf_")}
    with cb.database.session() as session:
        cases.update_case(session, credentials.user(session), case_id, CaseUpdate(custom_fields=values))
    return _back(case_id, "#custom")


@router.post("/cases/{case_id}/copy")
def copy_to_folder(case_id: int, cb: CasebankDep, credentials: CredentialsDep,
                   folder_id: Annotated[int, Form()]) -> Response:
    """A copy of the case, images included, in a folder one may edit (an LDM or exam set)."""
    with cb.database.session() as session:
        copy = copying.copy_case(session, cb.blobs, credentials.user(session), case_id, folder_id)
        copy_id = copy.id
    return RedirectResponse(f"/cases/{copy_id}", status_code=303)


@router.post("/cases/{case_id}/attachments")
async def upload_attachment(case_id: int, file: UploadFile, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    data = await file.read(case_extras.MAX_ATTACHMENT_BYTES + 1)
    with cb.database.session() as session:
        case_extras.add_attachment(session, cb.blobs, credentials.user(session), case_id,
                                   file.filename or "attachment", file.content_type or "", data)
    return _back(case_id, "#attachments")


@router.post("/attachments/{attachment_id}/remove")
def remove_attachment(attachment_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        case_id = case_extras.remove_attachment(session, credentials.user(session), attachment_id)
    return _back(case_id, "#attachments")
