"""The pages of research projects, clinical trials and cohorts: the project list (admins create
projects there), a project's overview (members, sites, time points), the submission matrix with
the coordinators' QC verdicts, the project search that saves live cohorts, and a cohort with its
frozen versions and what changed between them.

The same domain calls and rights as the REST API (:mod:`api.routes.projects`). A page belongs to
the project's members: anyone else, an admin included, gets the same 404 as for a missing
project. A form that the domain refuses re-renders its page with the message beside the form and
what was typed kept; nothing is half-done, since each attempt runs in its own transaction."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from archive import catalogue, cohorts, projects, trials, users
from archive.errors import (
    ArchiveError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    NotPermitted,
)
from archive.models import Cohort, Project, ProjectRole, QcState, User
from search.cohorts import live_cases
from search.index import SearchResult, SearchUnavailable
from search.query import QueryError
from search.service import SearchRequest, scope_folder_ids, search_cases

from ..deps import CasebankDep, CredentialsDep
from .pages import FACET_TITLES, SEARCH_FACETS, _to_login, templates
from .search import render_result

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
ROLE_CHOICES = [(role.value, label) for role, label in projects.ROLE_LABELS.items()]
QC_WORDS = {QcState.PASSED: "QC passed", QcState.FAILED: "QC failed", QcState.RECEIVED: "received",
            QcState.SUPERSEDED: "superseded"}
SPLIT = re.compile(r"[,\s]+")


# --- shared helpers --------------------------------------------------------------------------------

@dataclass
class FormError:
    """A refused form: which one, the domain's message, and what the user typed."""

    form: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)


def _status_of(exc: ArchiveError) -> int:
    return 403 if isinstance(exc, NotPermitted) else 422


def _typed(error: FormError | None) -> Callable[..., Any]:
    """typed(form, name, default): what was typed into `form` if it was refused, else `default`."""

    def typed(form: str, name: str, default: Any = "") -> Any:
        if error is not None and error.form == form:
            return error.values.get(name, default)
        return default

    return typed


def member_project(session: Session, user: User, project_id: int | str) -> tuple[Project, ProjectRole]:
    """The project and the caller's role in it; NotFound for anyone who is not a member (admins too:
    they create projects and name their PI, but a project's pages are its members')."""
    project = projects.get_project(session, user, project_id)
    role = projects.role_of(session, project, user)
    if role is None:
        raise NotFound(f"project {project_id} does not exist")
    return project, role


def _attempt(cb: CasebankDep, credentials: CredentialsDep, action: Callable[[Session, User], Any]) -> tuple[Any, ArchiveError | None]:
    """Run `action` in its own transaction: its result, or the domain's refusal (rolled back)."""
    try:
        with cb.database.session() as session:
            return action(session, credentials.user(session)), None
    except NotAuthenticated:
        raise
    except ArchiveError as exc:
        return None, exc


def _project_id(cb: CasebankDep, credentials: CredentialsDep, project_id: str) -> int:
    """The numeric ID of a project the caller belongs to (else the 404 page)."""
    with cb.database.session() as session:
        project, _ = member_project(session, credentials.user(session), project_id)
        return project.id


def _still_member(cb: CasebankDep, credentials: CredentialsDep, project_id: int) -> bool:
    with cb.database.session() as session:
        user = credentials.user(session)
        return projects.role_of(session, session.get_one(Project, project_id), user) is not None


def _int_or_none(label: str, text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise InvalidInput(f"{label} {text!r} must be a whole number of days") from exc


def qc_words(cell: trials.Cell | None) -> str:
    """A matrix cell in plain words."""
    if cell is None:
        return "not yet"
    if cell.state is QcState.FAILED:
        return "QC failed: " + ("; ".join(cell.reasons) or "no reason recorded")
    return QC_WORDS[cell.state]


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if len(text) == 8 and text.isdigit() else text


def _filter_words(filters: list[str]) -> list[str]:
    """modality:CT -> "Modality: CT"."""
    out = []
    for f in filters:
        name, _, value = f.partition(":")
        out.append(f"{FACET_TITLES.get(name, name)}: {value}")
    return out


# --- the project list ------------------------------------------------------------------------------

def _projects_page(request: Request, cb: CasebankDep, credentials: CredentialsDep, error: FormError | None = None,
                   status: int = 200) -> Response:
    with cb.database.session() as session:
        user = credentials.user(session)
        rows = [{"project": p, "role": projects.ROLE_LABELS[r] if r else None} for p, r in projects.projects_of(session, user)]
        return templates.TemplateResponse(request, "projects.html", {
            "user": user, "rows": rows, "error": error, "typed": _typed(error)}, status_code=status)


@router.get("/projects", response_class=HTMLResponse)
def projects_page(request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    try:
        return _projects_page(request, cb, credentials)
    except NotAuthenticated:
        return _to_login(request)


@router.post("/projects", response_class=HTMLResponse)
def create_project(
    request: Request, cb: CasebankDep, credentials: CredentialsDep, name: Annotated[str, Form(max_length=64)] = "",
    protocol_id: Annotated[str, Form(max_length=64)] = "", title: Annotated[str, Form(max_length=200)] = "",
    principal_investigator: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Admins create a project (its collection and hold folders) and name its principal investigator."""

    def create(session: Session, actor: User) -> int:
        if not actor.is_admin:  # before looking the PI's name up: no probing user names
            raise NotPermitted(f"{actor.username} may not create projects; only admins may")
        pi = users.get_user(session, principal_investigator) if principal_investigator.strip() else None
        return projects.create_project(session, actor, name, protocol_id=protocol_id, title=title,
                                       principal_investigator=pi).id

    project_id, error = _attempt(cb, credentials, create)
    if error is not None:
        typed = {"name": name, "protocol_id": protocol_id, "title": title, "principal_investigator": principal_investigator}
        return _projects_page(request, cb, credentials, FormError("project", str(error), typed), _status_of(error))
    if _still_member(cb, credentials, project_id):
        return RedirectResponse(f"/projects/{project_id}", status_code=303)
    return RedirectResponse("/projects", status_code=303)


# --- a project's overview ------------------------------------------------------------------------

def _overview(request: Request, cb: CasebankDep, credentials: CredentialsDep, project_id: int | str,
              error: FormError | None = None, status: int = 200) -> Response:
    with cb.database.session() as session:
        user = credentials.user(session)
        project, role = member_project(session, user, project_id)
        sites = projects.sites_of(session, project)
        site_ids = {s.id: s.site_id for s in sites}
        members = [{"username": m.user.username, "display_name": m.user.display_name, "role": m.role,
                    "role_label": projects.ROLE_LABELS[m.role], "site": site_ids.get(m.site_id or 0, "")}
                   for m in projects.members_of(session, project)]
        reader = role in projects.READERS
        coordinator = role in projects.COORDINATORS
        held = [{"case": c, "notice": c.notice} for c in trials.held_cases(session, user, project)] if coordinator else []
        context = {
            "user": user, "project": project, "role": role, "role_label": projects.ROLE_LABELS[role],
            "manage": projects.may_manage(session, user, project), "reader": reader, "coordinator": coordinator,
            "members": members, "sites": sites, "subject_counts": trials.subject_counts(session, project),
            "time_points": projects.time_points_of(session, project), "role_choices": ROLE_CHOICES,
            "held": held, "cohorts": cohorts.cohorts_of(session, user, project) if reader else [],
            "folders": projects.folders_of(session, project), "error": error, "typed": _typed(error),
        }
        return templates.TemplateResponse(request, "project.html", context, status_code=status)


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(project_id: str, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    try:
        return _overview(request, cb, credentials, project_id)
    except NotAuthenticated:
        return _to_login(request)


def _after(request: Request, cb: CasebankDep, credentials: CredentialsDep, pid: int, form: str,
           error: ArchiveError | None, typed: dict[str, Any], anchor: str) -> Response:
    """Back to the overview (303), or the overview again with the refusal beside the form."""
    if error is not None:
        return _overview(request, cb, credentials, pid, FormError(form, str(error), typed), _status_of(error))
    if not _still_member(cb, credentials, pid):  # a PI who removed themselves
        return RedirectResponse("/projects", status_code=303)
    return RedirectResponse(f"/projects/{pid}{anchor}", status_code=303)


@router.post("/projects/{project_id}/members", response_class=HTMLResponse)
def set_member(
    project_id: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    username: Annotated[str, Form(max_length=64)] = "", role: Annotated[str, Form(max_length=32)] = "",
    site: Annotated[str, Form(max_length=64)] = "", form: Annotated[str, Form(max_length=100)] = "member",
) -> Response:
    """Add a member with a role, or change a member's role (the PI; admins who are members)."""
    pid = _project_id(cb, credentials, project_id)

    def act(session: Session, actor: User) -> None:
        project = projects.get_project(session, actor, pid)
        projects.require_manager(session, actor, project, "add members")  # before looking the name up
        if not username.strip():
            raise InvalidInput("name the user to add")
        chosen = projects.parse_role(role)
        trial_site = projects.site_by_id(session, project, site) if site.strip() else None
        projects.set_member(session, actor, project, users.get_user(session, username), chosen, trial_site)

    _, error = _attempt(cb, credentials, act)
    form = form if form.startswith("member") else "member"
    return _after(request, cb, credentials, pid, form, error, {"username": username, "role": role, "site": site}, "#members")


@router.post("/projects/{project_id}/members/{username}/remove", response_class=HTMLResponse)
def remove_member(project_id: str, username: str, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    pid = _project_id(cb, credentials, project_id)

    def act(session: Session, actor: User) -> None:
        project = projects.get_project(session, actor, pid)
        projects.require_manager(session, actor, project, "remove members")  # before looking the name up
        projects.remove_member(session, actor, project, users.get_user(session, username))

    _, error = _attempt(cb, credentials, act)
    return _after(request, cb, credentials, pid, f"member:{username}", error, {}, "#members")


@router.post("/projects/{project_id}/sites", response_class=HTMLResponse)
def enrol_site(
    project_id: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    site_id: Annotated[str, Form(max_length=64)] = "", name: Annotated[str, Form(max_length=200)] = "",
    contact_email: Annotated[str, Form(max_length=320)] = "", ae_titles: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Enrol a site (or change it): its ID as the edges write it, its contact, its edges' AE titles."""
    pid = _project_id(cb, credentials, project_id)

    def act(session: Session, actor: User) -> None:
        project = projects.get_project(session, actor, pid)
        projects.enrol_site(session, actor, project, site_id, name=name, contact_email=contact_email,
                            ae_titles=[t for t in SPLIT.split(ae_titles) if t])

    _, error = _attempt(cb, credentials, act)
    typed = {"site_id": site_id, "name": name, "contact_email": contact_email, "ae_titles": ae_titles}
    return _after(request, cb, credentials, pid, "site", error, typed, "#sites")


@router.post("/projects/{project_id}/time-points", response_class=HTMLResponse)
def define_time_point(
    project_id: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    code: Annotated[str, Form(max_length=64)] = "", label: Annotated[str, Form(max_length=200)] = "",
    day: Annotated[str, Form(max_length=12)] = "", window_days: Annotated[str, Form(max_length=12)] = "",
    expected_series: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A time point of the protocol and the series it expects ("CT:*chest*, MR")."""
    pid = _project_id(cb, credentials, project_id)

    def act(session: Session, actor: User) -> None:
        project = projects.get_project(session, actor, pid)
        projects.require_manager(session, actor, project, "define time points")
        expected = [projects.parse_expected_series(e) for e in re.split(r"[,\n]+", expected_series) if e.strip()]
        projects.define_time_point(session, actor, project, code, label=label, day=_int_or_none("day", day),
                                   window_days=_int_or_none("window", window_days), expected_series=expected)

    _, error = _attempt(cb, credentials, act)
    typed = {"code": code, "label": label, "day": day, "window_days": window_days, "expected_series": expected_series}
    return _after(request, cb, credentials, pid, "time_point", error, typed, "#time-points")


# --- the submission matrix -----------------------------------------------------------------------

def _matrix_page(request: Request, cb: CasebankDep, credentials: CredentialsDep, project_id: int | str, site: str,
                 error: FormError | None = None, status: int = 200) -> Response:
    with cb.database.session() as session:
        user = credentials.user(session)
        project, role = member_project(session, user, project_id)
        grid = trials.matrix(session, user, project, site)
        columns = [{"code": p.code, "label": p.label, "known": True} for p in grid.time_points]
        columns += [{"code": c, "label": c or "no time point", "known": False} for c in grid.unknown_time_points]
        rows = [{"subject": r.subject.subject_id, "site": r.subject.site.site_id,
                 "cells": {c["code"]: r.cells.get(c["code"]) for c in columns}} for r in grid.rows]
        counts = {state.value: sum(1 for r in grid.rows for cell in r.cells.values() if cell.state is state) for state in QcState}
        return templates.TemplateResponse(request, "project_matrix.html", {
            "user": user, "project": project, "role_label": projects.ROLE_LABELS[role], "columns": columns,
            "rows": rows, "sites": grid.sites, "site": site, "counts": counts,
            "decide": role in projects.COORDINATORS, "qc_words": qc_words, "date": _date,
            "error": error, "typed": _typed(error),
        }, status_code=status)


@router.get("/projects/{project_id}/matrix", response_class=HTMLResponse)
def matrix_page(project_id: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
                site: str = Query("", max_length=64)) -> Response:
    """Subjects x time points: each cell the QC state of the current submission, in colour and words."""
    if not credentials.present:
        return _to_login(request)
    try:
        return _matrix_page(request, cb, credentials, project_id, site)
    except NotAuthenticated:
        return _to_login(request)


@router.post("/projects/{project_id}/qc", response_class=HTMLResponse)
def decide_qc(
    project_id: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    submission_id: Annotated[int, Form()], decision: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "", site: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A coordinator passes or fails a submission; a failure needs a reason (it is mailed to the site)."""
    pid = _project_id(cb, credentials, project_id)

    def act(session: Session, actor: User) -> None:
        if decision not in ("pass", "fail"):
            raise InvalidInput("choose Pass or Fail")
        trials.decide(session, actor, projects.get_project(session, actor, pid), submission_id, decision == "pass", reason)

    _, error = _attempt(cb, credentials, act)
    if error is not None:
        return _matrix_page(request, cb, credentials, pid, site,
                            FormError(f"qc-{submission_id}", str(error), {"reason": reason}), _status_of(error))
    query = f"?{urlencode({'site': site})}" if site else ""
    return RedirectResponse(f"/projects/{pid}/matrix{query}#submission-{submission_id}", status_code=303)


# --- the project search --------------------------------------------------------------------------

def _search_page(request: Request, cb: CasebankDep, credentials: CredentialsDep, project_id: int | str, q: str,
                 filters: list[str], sort: str, page: int, error: FormError | None = None, status: int = 200) -> Response:
    page = max(page, 1)
    with cb.database.session() as session:
        user = credentials.user(session)
        project, role = member_project(session, user, project_id)
        custom = catalogue.keyword_fields_in(session, set(scope_folder_ids(session, user, project)))
        facets = SEARCH_FACETS + tuple(f"custom.{f.name}" for f in custom)
        problem = ""
        try:
            found = search_cases(session, cb.index, user, SearchRequest(q, tuple(filters), facets, sort, page, PAGE_SIZE),
                                 project=project)
        except QueryError as exc:
            found, problem, status = SearchResult(total=0), str(exc), 422
        except SearchUnavailable as exc:
            found, problem, status = SearchResult(total=0), f"search is unavailable for now; nothing is lost: {exc}", 503
        result = render_result(session, cb, found, page, PAGE_SIZE)
        base = f"/projects/{project.id}/search"

        def url(*, add: str | None = None, remove: str | None = None, to_page: int = 1, to_sort: str | None = None) -> str:
            chosen = [f for f in filters if f != remove] + ([add] if add and add not in filters else [])
            params = [("q", q)] if q else []
            params += [("filter", f) for f in chosen]
            if (to_sort or sort) != "relevance":
                params.append(("sort", to_sort or sort))
            if to_page > 1:
                params.append(("page", str(to_page)))
            return base + ("?" + urlencode(params) if params else "")

        labels = {f"{name}:{v.value}": v.label or v.value for name, values in result.facets.items() for v in values}
        return templates.TemplateResponse(request, "project_search.html", {
            "user": user, "project": project, "q": "", "query": q, "result": result, "page": page, "sort": sort,
            "filters": list(filters), "url": url, "base": base, "problem": problem,
            "facet_titles": {**FACET_TITLES, **{f"custom.{f.name}": f.title for f in custom}}, "labels": labels,
            "pages": max(1, -(-result.total // PAGE_SIZE)), "may_save": role in cohorts.MAKERS,
            "error": error, "typed": _typed(error),
        }, status_code=status)


@router.get("/projects/{project_id}/search", response_class=HTMLResponse)
def project_search(
    project_id: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    q: Annotated[str, Query(max_length=1000)] = "",
    filter: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI reads it, never mutates it)
    sort: Annotated[str, Query(max_length=20)] = "relevance", page: int = 1,
) -> Response:
    """Search inside the project (its members only); the teaching search never shows these cases."""
    if not credentials.present:
        return _to_login(request)
    try:
        return _search_page(request, cb, credentials, project_id, q, list(filter), sort, page)
    except NotAuthenticated:
        return _to_login(request)


@router.post("/projects/{project_id}/cohorts", response_class=HTMLResponse)
def save_cohort(
    project_id: str, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    name: Annotated[str, Form(max_length=200)] = "", q: Annotated[str, Form(max_length=1000)] = "",
    filter: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI reads it, never mutates it)
) -> Response:
    """Save the search as a live cohort of the project: it grows as cases arrive."""
    pid = _project_id(cb, credentials, project_id)

    def act(session: Session, actor: User) -> int:
        project = projects.get_project(session, actor, pid)
        return cohorts.create_cohort(session, actor, name, project=project, text=q, filters=filter).id

    cohort_id, error = _attempt(cb, credentials, act)
    if error is not None:
        return _search_page(request, cb, credentials, pid, q, list(filter), "relevance", 1,
                            FormError("cohort", str(error), {"name": name}), _status_of(error))
    return RedirectResponse(f"/cohorts/{cohort_id}", status_code=303)


# --- a cohort ------------------------------------------------------------------------------------

def _diff(session: Session, cb: CasebankDep, user: User, cohort: Cohort, base: str, other: str,
          live_entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The diff view's content: added, removed and changed cases, or why it cannot be shown."""
    view: dict[str, Any] = {"from": base, "to": other or "live", "problem": ""}
    try:
        if not base.strip().isdigit():
            raise InvalidInput(f"compare from a version number, not {base!r}")
        before = cohorts.get_version(session, user, cohort.id, int(base)).entries
        to = (other or "live").strip()
        if to == "live":
            if live_entries is None:
                raise InvalidInput("the live cohort cannot be searched right now")
            after = live_entries
        elif to.isdigit():
            after = cohorts.get_version(session, user, cohort.id, int(to)).entries
        else:
            raise InvalidInput(f"compare with a version number or the live cohort, not {to!r}")
    except (InvalidInput, NotFound) as exc:
        view["problem"] = str(exc)
        return view
    change = cohorts.diff(before, after)
    view.update(added=change.added, removed=change.removed, changed=change.changed)
    return view


def _cohort_page(request: Request, cb: CasebankDep, credentials: CredentialsDep, cohort_id: int, base: str = "",
                 other: str = "", error: FormError | None = None, status: int = 200) -> Response:
    with cb.database.session() as session:
        user = credentials.user(session)
        cohort = cohorts.get_cohort(session, user, cohort_id)
        project = cohorts.project_of(session, cohort)
        role = projects.role_of(session, project, user) if project else None
        problem = ""
        try:
            live = live_cases(session, cb.index, user, cohort)
        except (SearchUnavailable, QueryError) as exc:
            live, problem = None, f"the live members cannot be listed right now: {exc}"
        live_entries = [cohorts.entry_of(c) for c in live] if live is not None else None
        versions = [{"version": v, "cases": len(v.entries), "instances": cohorts.instance_count(v.entries),
                     "by": v.frozen_by} for v in cohorts.versions_of(session, cohort)]
        may_freeze = role in cohorts.MAKERS if project else cohort.owner_id == user.id
        search_url = ""
        if project is not None:
            params = ([("q", cohort.text)] if cohort.text else []) + [("filter", f) for f in cohort.filters or []]
            search_url = f"/projects/{project.id}/search" + ("?" + urlencode(params) if params else "")
        return templates.TemplateResponse(request, "cohort.html", {
            "user": user, "cohort": cohort, "project": project, "live": live or [], "live_problem": problem,
            "live_instances": cohorts.instance_count(live_entries or []), "versions": versions,
            "filter_words": _filter_words(list(cohort.filters or [])), "may_freeze": may_freeze,
            "search_url": search_url, "diff": _diff(session, cb, user, cohort, base, other, live_entries) if base else None,
            "error": error, "typed": _typed(error),
        }, status_code=status)


@router.get("/cohorts/{cohort_id}", response_class=HTMLResponse)
def cohort_page(
    cohort_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    base: str = Query("", alias="from", max_length=12), other: str = Query("", alias="to", max_length=12),
) -> Response:
    """The cohort's query, its live members now, its frozen versions, and what changed (?from=N&to=live|M)."""
    if not credentials.present:
        return _to_login(request)
    try:
        return _cohort_page(request, cb, credentials, cohort_id, base, other)
    except NotAuthenticated:
        return _to_login(request)


@router.post("/cohorts/{cohort_id}/versions", response_class=HTMLResponse)
def freeze_cohort(cohort_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep,
                  note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Freeze the live cohort into a new version: exactly its cases and instances now, never changed."""
    with cb.database.session() as session:
        cohorts.get_cohort(session, credentials.user(session), cohort_id)  # else the 404 page

    def act(session: Session, actor: User) -> int:
        cohort = cohorts.get_cohort(session, actor, cohort_id)
        try:
            members = live_cases(session, cb.index, actor, cohort)
        except SearchUnavailable as exc:
            raise InvalidInput(f"search is unavailable for now, so nothing can be frozen; try again later ({exc})") from exc
        return cohorts.freeze(session, actor, cohort, members, note).number

    number, error = _attempt(cb, credentials, act)
    if error is not None:
        return _cohort_page(request, cb, credentials, cohort_id, error=FormError("freeze", str(error), {"note": note}),
                            status=_status_of(error))
    return RedirectResponse(f"/cohorts/{cohort_id}#version-{number}", status_code=303)
