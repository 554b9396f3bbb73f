"""Quizzes and exams: REST, the editor's and examiner's pages, the candidate screen (reached by an
unguessable link, no login) following the examiner by server-sent events, and self-tests.

The candidate's screen and its event stream are built only from ``quizzes.candidate_view``; its
images are rendered PNGs of the current case only, never DICOM (whose headers could name the
diagnosis)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from pydicom import dcmread
from starlette.concurrency import run_in_threadpool

from archive import audit, cases, folders, quizzes
from archive.errors import ArchiveError, InvalidInput, NotFound
from archive.models import Instance, Quiz, QuizMode, User
from export import case_render, presentation
from search.query import QueryError
from terminology.model import TerminologyError
from search.service import MAX_PAGE_SIZE, SearchRequest, search_cases

from ..deps import CasebankDep, CredentialsDep
from ..rendering import render_png
from ..runtime import Casebank
from .pages import _to_login, templates

router = APIRouter(tags=["quizzes"])
pages = APIRouter(include_in_schema=False)
POLL_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0
IMAGE_SIZE = 1024
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


# -- building a quiz: from cases, a folder or a search ---------------------------------------------------


class QuizIn(BaseModel):
    title: str = Field(max_length=200)
    case_ids: list[int] = Field(default_factory=list, max_length=quizzes.MAX_CASES)
    folder_id: int | None = None
    search: str = Field("", max_length=1000, description="search text; with filters, the cases it finds")
    filters: list[str] = Field(default_factory=list, max_length=20)
    mode: QuizMode = QuizMode.SELF_TEST
    hidden: list[str] | None = None
    seconds_per_case: int | None = None


class QuizOut(BaseModel):
    id: int
    title: str
    mode: str
    hidden: list[str]
    seconds_per_case: int | None
    cases: int
    owner: str
    source: str


def quiz_out(quiz: Quiz) -> QuizOut:
    return QuizOut(id=quiz.id, title=quiz.title, mode=quiz.mode.value, hidden=list(quiz.hidden_fields),
                   seconds_per_case=quiz.seconds_per_case, cases=len(quiz.items), owner=quiz.owner.username,
                   source=quiz.source)


def chosen_cases(cb: Casebank, session, user: User, body: QuizIn) -> tuple[list[int], str]:  # type: ignore[no-untyped-def]
    """The case IDs a quiz is built from, and how they were chosen (in words)."""
    if body.case_ids:
        return list(body.case_ids), "chosen cases"
    if body.folder_id is not None:
        folder = folders.get_folder(session, user, body.folder_id)
        found = sorted(cases.list_cases(session, user, folder.id), key=lambda c: c.id)
        return [c.id for c in found], f"folder {folders.folder_path(session, folder)}"
    if body.search.strip() or body.filters:
        try:
            result = search_cases(session, cb.index, user, SearchRequest(
                text=body.search.strip(), filters=tuple(body.filters), size=MAX_PAGE_SIZE))
        except QueryError as exc:
            raise InvalidInput(str(exc)) from None
        words = " ".join([body.search.strip(), *body.filters]).strip()
        return [hit.case_id for hit in result.hits], f"search: {words}"
    raise InvalidInput("choose the quiz's cases: case IDs, a folder or a search")


def build_quiz(cb: Casebank, session, user: User, body: QuizIn) -> Quiz:  # type: ignore[no-untyped-def]
    ids, source = chosen_cases(cb, session, user, body)
    if not ids:
        raise InvalidInput(f"no cases found for {source}")
    return quizzes.create_quiz(session, user, body.title, ids, mode=body.mode, hidden=body.hidden,
                               seconds_per_case=body.seconds_per_case, source=source)


@router.post("/api/quizzes", status_code=201, response_model=QuizOut)
def create_quiz(body: QuizIn, cb: CasebankDep, credentials: CredentialsDep) -> QuizOut:
    with cb.database.session() as session:
        return quiz_out(build_quiz(cb, session, credentials.user(session), body))


@router.get("/api/quizzes", response_model=list[QuizOut])
def list_quizzes(cb: CasebankDep, credentials: CredentialsDep) -> list[QuizOut]:
    with cb.database.session() as session:
        return [quiz_out(q) for q in quizzes.quizzes_of(session, credentials.user(session))]


@router.get("/api/quizzes/{quiz_id}", response_model=QuizOut)
def read_quiz(quiz_id: int, cb: CasebankDep, credentials: CredentialsDep) -> QuizOut:
    with cb.database.session() as session:
        return quiz_out(quizzes.get_quiz(session, credentials.user(session), quiz_id))


@router.get("/api/quizzes/{quiz_id}/export/pptx", responses={200: {"content": {PPTX: {}}}})
def quiz_presentation(quiz_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    """The quiz as PowerPoint for its owner: hidden fields only in the speaker notes, so the
    presenter view is the examiner's screen and the projected slides are the candidates'."""
    with cb.database.session() as session:
        user = credentials.user(session)
        quiz = quizzes.own_quiz(session, user, quiz_id)
        hidden = frozenset(quiz.hidden_fields)
        plans = [(quizzes.candidate_view(quiz, item.position).label, case_render.plan_case(item.case, cb.blobs), hidden)
                 for item in quiz.items]
        title = quiz.title
        audit.record(session, user, "quiz.exported", "quiz", quiz.id, format="pptx")
    data = presentation.build_quiz_presentation(title, plans, cb.blobs)
    safe = "".join(ch if ch.isalnum() else "-" for ch in title).strip("-") or "quiz"
    return Response(data, media_type=PPTX, headers={"Content-Disposition": f'attachment; filename="{safe}.pptx"',
                                                    "Cache-Control": "private, no-store"})


# -- live sessions ---------------------------------------------------------------------------------------


class SessionOut(BaseModel):
    id: int
    quiz_id: int
    candidate_url: str
    examiner_url: str
    position: int
    revealed: bool
    finished: bool
    revision: int


def session_out(live) -> SessionOut:  # type: ignore[no-untyped-def]
    return SessionOut(id=live.id, quiz_id=live.quiz_id, candidate_url=f"/exam/{live.candidate_token}",
                      examiner_url=f"/quizzes/sessions/{live.id}", position=live.position, revealed=live.revealed,
                      finished=live.finished, revision=live.revision)


@router.post("/api/quizzes/{quiz_id}/sessions", status_code=201, response_model=SessionOut)
def start_session(quiz_id: int, cb: CasebankDep, credentials: CredentialsDep) -> SessionOut:
    with cb.database.session() as session:
        return session_out(quizzes.start_session(session, credentials.user(session), quiz_id))


class DriveIn(BaseModel):
    position: int | None = None


@router.post("/api/quiz-sessions/{session_id}/{action}", response_model=SessionOut)
def drive_session(session_id: int, action: str, cb: CasebankDep, credentials: CredentialsDep,
                  body: DriveIn | None = None) -> SessionOut:
    """The examiner: next, previous, goto (with position), reveal, hide, finish."""
    with cb.database.session() as session:
        live = quizzes.drive(session, credentials.user(session), session_id, action, (body or DriveIn()).position)
        return session_out(live)


def _screen(cb: Casebank, token: str) -> dict[str, object]:
    with cb.database.session() as session:
        return quizzes.screen_state(quizzes.candidate_session(session, token)).as_json()


@pages.get("/exam/{token}/state")
def candidate_state(token: str, cb: CasebankDep) -> Response:
    return Response(json.dumps(_screen(cb, token)), media_type="application/json",
                    headers={"Cache-Control": "no-store"})


@pages.get("/exam/{token}/events")
async def candidate_events(token: str, request: Request, cb: CasebankDep) -> Response:
    """Server-sent events: the screen's state whenever the examiner changes it (polled from the
    database, so any archive process may serve the examiner and the candidate)."""
    first = await run_in_threadpool(_screen, cb, token)  # 404 before the stream starts

    async def stream():  # type: ignore[no-untyped-def]
        state, last_sent = first, asyncio.get_running_loop().time()
        yield f"data: {json.dumps(state)}\n\n"
        while not await request.is_disconnected():
            await asyncio.sleep(POLL_SECONDS)
            try:
                now_state = await run_in_threadpool(_screen, cb, token)
            except NotFound:
                yield "event: ended\ndata: {}\n\n"
                return
            now = asyncio.get_running_loop().time()
            if now_state["revision"] != state["revision"]:
                state, last_sent = now_state, now
                yield f"data: {json.dumps(state)}\n\n"
            elif now - last_sent > KEEPALIVE_SECONDS:
                last_sent = now
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@pages.get("/exam/{token}/images/{instance_id}.png")
def candidate_image(token: str, instance_id: int, cb: CasebankDep, frame: int = 1) -> Response:
    """An image of the case on screen now, rendered (no DICOM header leaves); others are 404."""
    with cb.database.session() as session:
        live = quizzes.candidate_session(session, token)
        if not quizzes.instance_in_case(live.quiz, live.position, instance_id):
            raise NotFound(f"image {instance_id} is not on screen")
        sha256 = session.get_one(Instance, instance_id).blob_sha256
    with cb.blobs.open(sha256) as f:
        png = render_png(dcmread(f), frame, IMAGE_SIZE)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


@pages.get("/exam/{token}", response_class=HTMLResponse)
def candidate_page(token: str, request: Request, cb: CasebankDep) -> Response:
    state = _screen(cb, token)
    return templates.TemplateResponse(request, "exam_candidate.html", {"user": None, "token": token, "state": state})


# -- self-tests -----------------------------------------------------------------------------------------


class AnswerIn(BaseModel):
    position: int
    answer: str = Field(max_length=5000)


class AnswerOut(BaseModel):
    position: int
    answer: str
    correct: bool
    matched: str
    model_answer: dict[str, object] | None  # shown at once in a self-test, at the end in an exam
    finished: bool


class AttemptOut(BaseModel):
    id: int
    started_at: str
    finished_at: str | None
    answered: int
    correct: int
    total: int


def synonyms_of(cb: Casebank):  # type: ignore[no-untyped-def]
    def find(system: str, code: str) -> list[str]:
        try:
            concept = cb.terminology.lookup(system, code)
        except TerminologyError:  # a system the archive does not know: no synonyms from it
            return []
        return list(concept.synonyms) if concept else []
    return find


def record_answer(cb: Casebank, session, user: User, attempt_id: int, position: int, text: str) -> AnswerOut:  # type: ignore[no-untyped-def]
    row, _ = quizzes.answer_case(session, user, attempt_id, position, text, synonyms_of(cb))
    attempt = row.attempt
    quiz = session.get_one(Quiz, attempt.quiz_id)
    finished = attempt.finished_at is not None
    show = quiz.mode is QuizMode.SELF_TEST or finished
    return AnswerOut(position=position, answer=row.answer, correct=row.correct, matched=row.matched, finished=finished,
                     model_answer=quizzes.model_answer(quiz.items[position - 1].case) if show else None)


@router.post("/api/quizzes/{quiz_id}/attempts", status_code=201, response_model=AttemptOut)
def start_attempt(quiz_id: int, cb: CasebankDep, credentials: CredentialsDep) -> AttemptOut:
    with cb.database.session() as session:
        attempt = quizzes.start_attempt(session, credentials.user(session), quiz_id)
        return attempt_out(quizzes.summary(session, attempt))


def attempt_out(s: quizzes.AttemptSummary) -> AttemptOut:
    return AttemptOut(id=s.id, started_at=s.started_at.isoformat(), finished_at=s.finished_at.isoformat() if s.finished_at else None,
                      answered=s.answered, correct=s.correct, total=s.total)


@router.post("/api/attempts/{attempt_id}/answers", response_model=AnswerOut)
def answer(attempt_id: int, body: AnswerIn, cb: CasebankDep, credentials: CredentialsDep) -> AnswerOut:
    with cb.database.session() as session:
        return record_answer(cb, session, credentials.user(session), attempt_id, body.position, body.answer)


@router.get("/api/quizzes/{quiz_id}/attempts", response_model=list[AttemptOut])
def attempts(quiz_id: int, cb: CasebankDep, credentials: CredentialsDep) -> list[AttemptOut]:
    with cb.database.session() as session:
        return [attempt_out(s) for s in quizzes.history(session, credentials.user(session), quiz_id)]


# -- pages ----------------------------------------------------------------------------------------------


def _form_error(request: Request, template: str, context: dict[str, object], exc: ArchiveError) -> Response:
    return templates.TemplateResponse(request, template, {**context, "error": str(exc)}, status_code=422)


def _list_context(session, user: User) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {"user": user, "quizzes": quizzes.quizzes_of(session, user), "hideable": quizzes.HIDEABLE,
            "default_hidden": quizzes.EXAM_DEFAULT_HIDDEN,
            "folders": [(f, folders.folder_path(session, f)) for f, _ in folders.list_visible_folders(session, user)
                        if f.project_id is None]}


@pages.get("/quizzes", response_class=HTMLResponse)
def quizzes_page(request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    with cb.database.session() as session:
        return templates.TemplateResponse(request, "quizzes.html", {**_list_context(session, credentials.user(session)),
                                                                    "form": {}})


@pages.post("/quizzes")
def create_quiz_form(
    request: Request, cb: CasebankDep, credentials: CredentialsDep,
    title: Annotated[str, Form(max_length=200)] = "", source: Annotated[str, Form()] = "folder",
    folder_id: Annotated[str, Form()] = "", search: Annotated[str, Form(max_length=1000)] = "",
    case_ids: Annotated[str, Form(max_length=5000)] = "", mode: Annotated[str, Form()] = "self_test",
    hidden: Annotated[list[str] | None, Form()] = None, seconds_per_case: Annotated[str, Form()] = "",
) -> Response:
    form = {"title": title, "source": source, "folder_id": folder_id, "search": search, "case_ids": case_ids,
            "mode": mode, "hidden": hidden or [], "seconds_per_case": seconds_per_case}
    with cb.database.session() as session:
        user = credentials.user(session)
        try:
            body = QuizIn(
                title=title, mode=_mode(mode) or QuizMode.SELF_TEST,
                hidden=hidden or [], seconds_per_case=_seconds(seconds_per_case),
                folder_id=int(folder_id) if source == "folder" and folder_id.isdigit() else None,
                search=search if source == "search" else "",
                case_ids=_ids(case_ids) if source == "cases" else [],
            )
            quiz = build_quiz(cb, session, user, body)
        except ArchiveError as exc:
            session.rollback()
            return _form_error(request, "quizzes.html", {**_list_context(session, user), "form": form}, exc)
        return RedirectResponse(f"/quizzes/{quiz.id}", status_code=303)


def _mode(text: str) -> QuizMode | None:
    return next((m for m in QuizMode if m.value == text), None)


def _seconds(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput(f"time per case: a number of seconds, not {text!r}")
    return int(text)


def _ids(text: str) -> list[int]:
    parts = [p for p in text.replace(",", " ").split() if p]
    bad = [p for p in parts if not p.isdigit()]
    if bad:
        raise InvalidInput(f"case numbers are digits; not {', '.join(bad[:3])}")
    return [int(p) for p in parts]


def _quiz_context(session, user: User, quiz: Quiz) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {"user": user, "quiz": quiz, "owner": quiz.owner_id == user.id, "hideable": quizzes.HIDEABLE,
            "history": quizzes.history(session, user, quiz.id)}


@pages.get("/quizzes/{quiz_id}", response_class=HTMLResponse)
def quiz_page(quiz_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    with cb.database.session() as session:
        user = credentials.user(session)
        quiz = quizzes.get_quiz(session, user, quiz_id)
        return templates.TemplateResponse(request, "quiz.html", _quiz_context(session, user, quiz))


@pages.post("/quizzes/{quiz_id}/settings")
def quiz_settings(
    quiz_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep,
    title: Annotated[str, Form(max_length=200)] = "", mode: Annotated[str, Form()] = "self_test",
    hidden: Annotated[list[str] | None, Form()] = None, seconds_per_case: Annotated[str, Form()] = "",
) -> Response:
    with cb.database.session() as session:
        user = credentials.user(session)
        try:
            quizzes.update_quiz(session, user, quiz_id, title=title, hidden=hidden or [],
                                mode=_mode(mode),
                                seconds_per_case=_seconds(seconds_per_case))
        except InvalidInput as exc:
            session.rollback()
            quiz = quizzes.get_quiz(session, user, quiz_id)
            return _form_error(request, "quiz.html", _quiz_context(session, user, quiz), exc)
    return RedirectResponse(f"/quizzes/{quiz_id}", status_code=303)


@pages.post("/quizzes/{quiz_id}/sessions")
def start_session_form(quiz_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        live = quizzes.start_session(session, credentials.user(session), quiz_id)
        return RedirectResponse(f"/quizzes/sessions/{live.id}", status_code=303)


@pages.get("/quizzes/sessions/{session_id}", response_class=HTMLResponse)
def examiner_page(session_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    with cb.database.session() as session:
        user = credentials.user(session)
        live = quizzes.examiner_session(session, user, session_id)
        quiz = live.quiz
        case = quiz.items[live.position - 1].case
        context = {"user": user, "live": live, "quiz": quiz, "case": case,
                   "view": quizzes.candidate_view(quiz, live.position, revealed=True),
                   "candidate_url": str(request.base_url).rstrip("/") + f"/exam/{live.candidate_token}",
                   "hidden_words": [quizzes.HIDEABLE[h] for h in quiz.hidden_fields]}
        return templates.TemplateResponse(request, "exam_examiner.html", context)


@pages.post("/quizzes/sessions/{session_id}/{action}")
def drive_form(session_id: int, action: str, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        try:
            quizzes.drive(session, credentials.user(session), session_id, action)
        except InvalidInput as exc:
            session.rollback()
            return RedirectResponse(f"/quizzes/sessions/{session_id}?message={quote(str(exc))}", status_code=303)
    return RedirectResponse(f"/quizzes/sessions/{session_id}", status_code=303)


@pages.post("/quizzes/{quiz_id}/attempts")
def start_attempt_form(quiz_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        attempt = quizzes.start_attempt(session, credentials.user(session), quiz_id)
        return RedirectResponse(f"/attempts/{attempt.id}/cases/1", status_code=303)


@pages.get("/attempts/{attempt_id}/cases/{position}", response_class=HTMLResponse)
def attempt_case_page(attempt_id: int, position: int, request: Request, cb: CasebankDep,
                      credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    with cb.database.session() as session:
        user = credentials.user(session)
        attempt = quizzes.get_attempt(session, user, attempt_id)
        quiz = session.get_one(Quiz, attempt.quiz_id)
        given = next((a for a in attempt.answers if a.position == position), None)
        finished = attempt.finished_at is not None
        show = given is not None and (quiz.mode is QuizMode.SELF_TEST or finished)
        view = quizzes.candidate_view(quiz, position, revealed=show)
        return templates.TemplateResponse(request, "attempt_case.html", {
            "user": user, "quiz": quiz, "attempt": attempt, "view": view, "given": given, "finished": finished})


@pages.post("/attempts/{attempt_id}/cases/{position}")
def attempt_answer_form(attempt_id: int, position: int, cb: CasebankDep, credentials: CredentialsDep,
                        answer: Annotated[str, Form(max_length=5000)] = "") -> Response:
    with cb.database.session() as session:
        user = credentials.user(session)
        out = record_answer(cb, session, user, attempt_id, position, answer)
        quiz = session.get_one(Quiz, quizzes.get_attempt(session, user, attempt_id).quiz_id)
        if quiz.mode is QuizMode.EXAM and not out.finished:
            return RedirectResponse(f"/attempts/{attempt_id}/cases/{position + 1}", status_code=303)
        if out.finished and quiz.mode is QuizMode.EXAM:
            return RedirectResponse(f"/attempts/{attempt_id}", status_code=303)
    return RedirectResponse(f"/attempts/{attempt_id}/cases/{position}", status_code=303)


@pages.get("/attempts/{attempt_id}", response_class=HTMLResponse)
def attempt_page(attempt_id: int, request: Request, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    if not credentials.present:
        return _to_login(request)
    with cb.database.session() as session:
        user = credentials.user(session)
        attempt = quizzes.get_attempt(session, user, attempt_id)
        quiz = session.get_one(Quiz, attempt.quiz_id)
        done = attempt.finished_at is not None
        rows = []
        for item in quiz.items:
            given = next((a for a in attempt.answers if a.position == item.position), None)
            shown = done or (quiz.mode is QuizMode.SELF_TEST and given is not None)
            rows.append((item, given, quizzes.model_answer(item.case) if shown else None))
        return templates.TemplateResponse(request, "attempt.html", {
            "user": user, "quiz": quiz, "attempt": attempt, "rows": rows, "summary": quizzes.summary(session, attempt)})


router.include_router(pages)
