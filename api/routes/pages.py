"""Server-rendered pages. They call the same domain services as the REST API."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from archive import case_extras, cases, catalogue, folders, quarantine
from archive.cases import CaseUpdate
from archive.display import NON_IMAGE_MODALITIES
from archive.errors import ArchiveError, InvalidInput, NotAuthenticated
from search.query import QueryError
from search.service import SearchRequest, search_cases
from ui import TEMPLATES

from .. import csrf
from ..deps import CasebankDep, CredentialsDep
from ..login import log_in, log_out
from ..schemas import KEYWORD_MAX, KEYWORDS_MAX, TEXT_MAX, TITLE_MAX
from .case_pages import CODE_SYSTEMS
from .search import render_result

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.globals["NON_IMAGE_MODALITIES"] = NON_IMAGE_MODALITIES
csrf.install_globals(templates.env)  # csrf_field(request) in every POST form


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return templates.TemplateResponse(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    cb: CasebankDep,
    username: str = Form(..., max_length=64),
    password: str = Form(..., max_length=1024),
    next: str = Form("/"),
) -> Response:
    try:
        log_in(request, cb, username, password)
    except (NotAuthenticated, HTTPException) as exc:
        status = exc.status_code if isinstance(exc, HTTPException) else 401
        message = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return templates.TemplateResponse(
            request, "login.html", {"next": _safe_next(next), "error": message}, status_code=status
        )
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, cb: CasebankDep) -> Response:
    log_out(request, cb)
    return RedirectResponse("/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
def my_folders(request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    try:
        with cb.database.session() as session:
            user = credentials.user(session)
            rows = [
                {"folder": f, "path": folders.folder_path(session, f), "rights": r,
                 "cases": cases.list_cases(session, user, f.id)}
                for f, r in folders.list_visible_folders(session, user)
            ]
            held = quarantine.sender_notice(quarantine.held_for_sender(session, user))
            return templates.TemplateResponse(request, "folders.html", {"user": user, "rows": rows, "held": held})
    except NotAuthenticated:
        return _to_login(request)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    with cb.database.session() as session:
        user = credentials.user(session)
        case = cases.get_case(session, user, case_id)
        rights = folders.rights_on(session, user, case.folder)
        return templates.TemplateResponse(request, "case.html", {
            "user": user, "case": case, "rights": rights, "path": folders.folder_path(session, case.folder),
            "likes": case_extras.likes(session, user, case_id),
            "attachments": case_extras.list_attachments(session, user, case_id),
            "history": case_extras.history(session, user, case_id) if rights.edit else [],
            "code_systems": CODE_SYSTEMS,
            "catalogue": catalogue.fields_of(session, case.folder),
            "copy_targets": [(f.id, folders.folder_path(session, f)) for f, r in folders.list_visible_folders(session, user)
                             if r.edit and f.id != case.folder_id],
        })


@router.post("/cases/{case_id}", response_class=HTMLResponse)
def case_edit(
    case_id: int,
    request: Request,
    cb: CasebankDep,
    credentials: CredentialsDep,
    title: str = Form("", max_length=TITLE_MAX),
    history: str = Form("", max_length=TEXT_MAX),
    findings: str = Form("", max_length=TEXT_MAX),
    differential: str = Form("", max_length=TEXT_MAX),
    diagnosis: str = Form("", max_length=TEXT_MAX),
    discussion: str = Form("", max_length=TEXT_MAX),
    keywords: str = Form("", max_length=KEYWORDS_MAX * (KEYWORD_MAX + 2)),
) -> Response:
    if not credentials.present:
        return _to_login(request)
    keyword_list = [k for k in (part.strip() for part in keywords.split(",")) if k]
    if len(keyword_list) > KEYWORDS_MAX or any(len(k) > KEYWORD_MAX for k in keyword_list):
        raise InvalidInput(f"at most {KEYWORDS_MAX} keywords of at most {KEYWORD_MAX} characters each")
    update = CaseUpdate(
        title=title, history=history, findings=findings, differential=differential,
        diagnosis=diagnosis, discussion=discussion, keywords=keyword_list,
    )
    with cb.database.session() as session:
        cases.update_case(session, credentials.user(session), case_id, update)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


SEARCH_FACETS = ("modality", "body_part", "icd10_chapter", "icd10_block", "snomed", "folder", "year", "sex",
                 "age_band", "keyword")
FACET_TITLES = {"modality": "Modality", "body_part": "Body part", "icd10_chapter": "ICD-10 chapter",
                "icd10_block": "ICD-10 block", "snomed": "SNOMED CT", "folder": "Folder", "year": "Year",
                "sex": "Sex", "age_band": "Age", "keyword": "Keyword"}


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request, cb: CasebankDep, credentials: CredentialsDep, q: str = "", page: int = 1,
    sort: str = "relevance", filter: list[str] = Query([]),
) -> Response:
    """Query box, facet sidebar with counts, active filters as removable chips, snippets, sort, paging."""
    if not credentials.present:
        return _to_login(request)
    page = max(page, 1)
    with cb.database.session() as session:
        user = credentials.user(session)
        try:
            custom = catalogue.keyword_fields_in(session, folders.visible_folder_ids(session, user))
            facets = SEARCH_FACETS + tuple(f"custom.{f.name}" for f in custom)
            found = search_cases(session, cb.index, user, SearchRequest(q, tuple(filter), facets, sort, page))
        except QueryError as exc:
            raise InvalidInput(str(exc)) from exc
        result = render_result(session, cb, found, page, 20)

    def url(*, add: str | None = None, remove: str | None = None, to_page: int = 1, to_sort: str | None = None) -> str:
        filters = [f for f in filter if f != remove] + ([add] if add and add not in filter else [])
        params = [("q", q)] if q else []
        params += [("filter", f) for f in filters]
        if (to_sort or sort) != "relevance":
            params.append(("sort", to_sort or sort))
        if to_page > 1:
            params.append(("page", str(to_page)))
        return "/search" + ("?" + urlencode(params) if params else "")

    labels = {f"{v_name}:{v.value}": v.label or v.value for v_name, values in result.facets.items() for v in values}
    return templates.TemplateResponse(request, "search.html", {
        "user": user, "q": q, "result": result, "page": page, "sort": sort, "filters": list(filter), "url": url,
        "facet_titles": {**FACET_TITLES, **{f"custom.{f.name}": f.title for f in custom}}, "labels": labels, "pages": max(1, -(-result.total // 20)),
    })


def render_error(request: Request, status: int, title: str, exc: ArchiveError) -> Response:
    return templates.TemplateResponse(
        request, "error.html", {"title": title, "detail": str(exc)}, status_code=status
    )
