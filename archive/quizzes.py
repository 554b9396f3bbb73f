"""Quizzes and exams built from teaching cases: what candidates may not see, live examiner and
candidate screens, and self-tests scored against the diagnosis.

Rights: a quiz belongs to its owner (who edits it and runs live sessions); anyone who may view
every one of its cases may take it as a self-test. A candidate screen needs no account: it is
reached by the session's unguessable token and is only ever given what :func:`candidate_view`
builds, which leaves out every hidden field (and, when the title is hidden, the series
descriptions, which often name the diagnosis)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .answers import Score, diagnosis_terms, score
from .cases import get_case
from .errors import InvalidInput, NotFound, NotPermitted
from .folders import rights_on
from .models import (
    Case, Quiz, QuizAnswer, QuizAttempt, QuizItem, QuizMode, QuizSession, User, utcnow,
)

HIDEABLE: dict[str, str] = {
    "title": "title (shown as 'Case N')",
    "history": "clinical history",
    "findings": "findings",
    "diagnosis": "diagnosis",
    "differential": "differential diagnosis",
    "discussion": "discussion",
    "codes": "codes",
    "keywords": "keywords",
    "catalogue": "catalogue fields",
}
"""Fields an editor may hide from candidates, with the words the editor's form shows."""

EXAM_DEFAULT_HIDDEN = ("title", "findings", "diagnosis", "differential", "discussion", "codes", "keywords", "catalogue")
ANSWER_FIELDS = ("diagnosis", "differential", "findings", "discussion", "codes")
"""What 'reveal' shows: the model answer."""

IMAGE_MODALITIES_EXCLUDED = frozenset({"SR", "KO", "PR", "DOC"})
MAX_CASES = 200


def parse_hidden(values: Sequence[str]) -> list[str]:
    unknown = [v for v in values if v not in HIDEABLE]
    if unknown:
        raise InvalidInput(f"cannot hide {', '.join(unknown)}: the fields that can be hidden are "
                           + ", ".join(HIDEABLE.values()))
    return [name for name in HIDEABLE if name in values]


def create_quiz(
    session: Session, actor: User, title: str, case_ids: Sequence[int], *, mode: QuizMode = QuizMode.SELF_TEST,
    hidden: Sequence[str] | None = None, seconds_per_case: int | None = None, source: str = "",
) -> Quiz:
    """A quiz of `case_ids` in that order; the actor must be able to view each (research cases never)."""
    title = title.strip()
    if not title:
        raise InvalidInput("give the quiz a title")
    ids = list(dict.fromkeys(case_ids))
    if not ids:
        raise InvalidInput("a quiz needs at least one case")
    if len(ids) > MAX_CASES:
        raise InvalidInput(f"a quiz holds at most {MAX_CASES} cases; this one would hold {len(ids)}")
    if seconds_per_case is not None and not 10 <= seconds_per_case <= 3600:
        raise InvalidInput("time per case: between 10 seconds and an hour, or none for long cases")
    for case_id in ids:
        case = get_case(session, actor, case_id)
        if case.folder.project_id is not None:
            raise NotPermitted(f"case {case_id} belongs to a research project; research cases are not used for teaching")
    quiz = Quiz(
        owner_id=actor.id, title=title, mode=mode, seconds_per_case=seconds_per_case, source=source[:500],
        hidden_fields=parse_hidden(hidden if hidden is not None else EXAM_DEFAULT_HIDDEN),
        items=[QuizItem(position=n, case_id=case_id) for n, case_id in enumerate(ids, start=1)],
    )
    session.add(quiz)
    session.flush()
    audit.record(session, actor, "quiz.created", "quiz", quiz.id, cases=ids, mode=mode.value)
    return quiz


def _may_take(session: Session, user: User, quiz: Quiz) -> bool:
    return quiz.owner_id == user.id or all(rights_on(session, user, item.case.folder).view for item in quiz.items)


def get_quiz(session: Session, user: User, quiz_id: int) -> Quiz:
    quiz = session.get(Quiz, quiz_id)
    if quiz is None or not _may_take(session, user, quiz):
        raise NotFound(f"quiz {quiz_id} does not exist")
    return quiz


def own_quiz(session: Session, user: User, quiz_id: int) -> Quiz:
    quiz = get_quiz(session, user, quiz_id)
    if quiz.owner_id != user.id:
        raise NotPermitted(f"only {quiz.owner.username}, who made quiz {quiz_id}, may change or run it")
    return quiz


def quizzes_of(session: Session, user: User) -> list[Quiz]:
    """Quizzes the user made, then those they may take, newest first."""
    quizzes = session.scalars(select(Quiz).order_by(Quiz.created_at.desc(), Quiz.id.desc())).all()
    return [q for q in quizzes if _may_take(session, user, q)]


def update_quiz(
    session: Session, actor: User, quiz_id: int, *, title: str | None = None, hidden: Sequence[str] | None = None,
    mode: QuizMode | None = None, seconds_per_case: int | None | str = "keep", case_ids: Sequence[int] | None = None,
) -> Quiz:
    quiz = own_quiz(session, actor, quiz_id)
    if title is not None:
        if not title.strip():
            raise InvalidInput("give the quiz a title")
        quiz.title = title.strip()
    if hidden is not None:
        quiz.hidden_fields = parse_hidden(hidden)
    if mode is not None:
        quiz.mode = mode
    if seconds_per_case != "keep":
        if seconds_per_case is not None and not 10 <= int(seconds_per_case) <= 3600:
            raise InvalidInput("time per case: between 10 seconds and an hour, or none for long cases")
        quiz.seconds_per_case = seconds_per_case  # type: ignore[assignment]
    if case_ids is not None:
        ids = list(dict.fromkeys(case_ids))
        if not ids:
            raise InvalidInput("a quiz needs at least one case")
        for case_id in ids:
            get_case(session, actor, case_id)
        quiz.items.clear()
        session.flush()
        quiz.items.extend(QuizItem(position=n, case_id=case_id) for n, case_id in enumerate(ids, start=1))
    session.flush()
    audit.record(session, actor, "quiz.changed", "quiz", quiz.id)
    return quiz


# -- what a candidate is given ----------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateSeries:
    label: str
    instance_ids: tuple[int, ...]


@dataclass(frozen=True)
class CandidateCase:
    """One case as a candidate may see it: nothing hidden is in here, so nothing hidden can leak."""

    position: int
    total: int
    label: str
    fields: dict[str, str]  # field name -> text, only those not hidden
    keywords: tuple[str, ...]
    codes: tuple[str, ...]
    catalogue: dict[str, str]
    series: tuple[CandidateSeries, ...]
    seconds: int | None
    answer: dict[str, object] | None = None  # the model answer, once revealed

    def as_json(self) -> dict[str, object]:
        return {
            "position": self.position, "total": self.total, "label": self.label, "fields": self.fields,
            "keywords": list(self.keywords), "codes": list(self.codes), "catalogue": self.catalogue,
            "series": [{"label": s.label, "instance_ids": list(s.instance_ids)} for s in self.series],
            "seconds": self.seconds, "answer": self.answer,
        }


def _code_words(case: Case) -> tuple[str, ...]:
    return tuple(f"{c.display} ({c.code})" if c.display else c.code for c in case.codes)


def image_series(case: Case) -> list[tuple[object, list[int]]]:
    """(series, instance ids) of the case's image series, in study and series order."""
    found = []
    for study in case.studies:
        for series in study.series:
            if series.modality.upper() in IMAGE_MODALITIES_EXCLUDED or not series.instances:
                continue
            found.append((series, [i.id for i in series.instances]))
    return found


def model_answer(case: Case) -> dict[str, object]:
    return {"title": case.title, "diagnosis": case.diagnosis, "differential": case.differential,
            "findings": case.findings, "discussion": case.discussion, "codes": list(_code_words(case))}


def candidate_view(quiz: Quiz, position: int, *, revealed: bool = False) -> CandidateCase:
    items = quiz.items
    if not 1 <= position <= len(items):
        raise NotFound(f"quiz {quiz.id} has no case {position}")
    case = items[position - 1].case
    hidden = set(quiz.hidden_fields)
    texts = {name: getattr(case, name) for name in ("history", "findings", "diagnosis", "differential", "discussion")
             if name not in hidden and getattr(case, name)}
    describe = "title" not in hidden
    series = tuple(
        CandidateSeries(
            f"{s.modality} {s.description}".strip() if describe and s.description else f"{s.modality} series {n}",
            tuple(ids))
        for n, (s, ids) in enumerate(image_series(case), start=1)
    )
    return CandidateCase(
        position=position, total=len(items),
        label=case.title if describe and case.title else f"Case {position}",
        fields=texts,
        keywords=() if "keywords" in hidden else tuple(case.keywords or ()),
        codes=() if "codes" in hidden else _code_words(case),
        catalogue={} if "catalogue" in hidden else {k: str(v) for k, v in (case.custom_fields or {}).items()},
        series=series, seconds=quiz.seconds_per_case,
        answer=model_answer(case) if revealed else None,
    )


def instance_in_case(quiz: Quiz, position: int, instance_id: int) -> bool:
    case = quiz.items[position - 1].case
    return any(instance_id in ids for _, ids in image_series(case))


# -- live sessions: the examiner drives, candidates follow ---------------------------------------------


def start_session(session: Session, actor: User, quiz_id: int) -> QuizSession:
    quiz = own_quiz(session, actor, quiz_id)
    live = QuizSession(quiz_id=quiz.id, examiner_id=actor.id, candidate_token=secrets.token_urlsafe(24))
    session.add(live)
    session.flush()
    audit.record(session, actor, "quiz.session_started", "quiz", quiz.id, exam_session=live.id)
    return live


def examiner_session(session: Session, actor: User, session_id: int) -> QuizSession:
    live = session.get(QuizSession, session_id)
    if live is None or live.examiner_id != actor.id:
        raise NotFound(f"exam session {session_id} does not exist")
    return live


def candidate_session(session: Session, token: str) -> QuizSession:
    live = session.scalar(select(QuizSession).where(QuizSession.candidate_token == token)) if token else None
    if live is None:
        raise NotFound("this exam link does not exist or has ended")
    return live


ACTIONS = ("next", "previous", "reveal", "hide", "finish", "goto")


def drive(session: Session, actor: User, session_id: int, action: str, position: int | None = None) -> QuizSession:
    """The examiner's buttons. In an exam, answers are revealed only once it is finished."""
    live = examiner_session(session, actor, session_id)
    total = len(live.quiz.items)
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if action in ("next", "previous", "goto"):
        target = {"next": live.position + 1, "previous": live.position - 1}.get(action, position or 0)
        if not 1 <= target <= total:
            raise InvalidInput(f"there is no case {target}: the quiz has {total}")
        live.position, live.revealed, live.case_started_at = target, False, utcnow()
    elif action == "reveal":
        if live.quiz.mode is QuizMode.EXAM and not live.finished:
            raise InvalidInput("in an exam the answers are shown at the end: finish the exam first")
        live.revealed = True
    elif action == "hide":
        live.revealed = False
    elif action == "finish":
        live.finished = True
    live.revision += 1
    session.flush()
    return live


@dataclass(frozen=True)
class ScreenState:
    """What a candidate screen shows now; `revision` tells a screen whether anything changed."""

    revision: int
    finished: bool
    case: CandidateCase
    seconds_left: int | None
    answers: list[dict[str, object]] = field(default_factory=list)  # all model answers, once an exam is over

    def as_json(self) -> dict[str, object]:
        return {"revision": self.revision, "finished": self.finished, "case": self.case.as_json(),
                "seconds_left": self.seconds_left, "answers": self.answers}


def screen_state(live: QuizSession, now: datetime | None = None) -> ScreenState:
    quiz = live.quiz
    over = live.finished and quiz.mode is QuizMode.EXAM
    case = candidate_view(quiz, live.position, revealed=live.revealed)
    seconds_left = None
    if quiz.seconds_per_case and not live.finished:
        started = live.case_started_at
        started = started if started.tzinfo else started.replace(tzinfo=timezone.utc)  # SQLite drops the zone
        elapsed = ((now or utcnow()) - started).total_seconds()
        seconds_left = max(0, int(quiz.seconds_per_case - elapsed))
    answers = ([{"position": item.position, **model_answer(item.case)} for item in quiz.items] if over else [])
    return ScreenState(live.revision, live.finished, case, seconds_left, answers)


# -- self-tests ---------------------------------------------------------------------------------------


def start_attempt(session: Session, user: User, quiz_id: int) -> QuizAttempt:
    quiz = get_quiz(session, user, quiz_id)
    attempt = QuizAttempt(quiz_id=quiz.id, user_id=user.id)
    session.add(attempt)
    session.flush()
    return attempt


def get_attempt(session: Session, user: User, attempt_id: int) -> QuizAttempt:
    attempt = session.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.user_id != user.id:
        raise NotFound(f"attempt {attempt_id} does not exist")
    return attempt


Synonyms = Callable[[str, str], Sequence[str]]


def answer_case(
    session: Session, user: User, attempt_id: int, position: int, answer: str, synonyms_of: Synonyms | None = None,
) -> tuple[QuizAnswer, Score]:
    """Score `answer` for case `position` against its diagnosis text and codes (with synonyms)."""
    attempt = get_attempt(session, user, attempt_id)
    if attempt.finished_at is not None:
        raise InvalidInput("this attempt is finished; start a new one to try again")
    quiz = session.get_one(Quiz, attempt.quiz_id)
    if not 1 <= position <= len(quiz.items):
        raise NotFound(f"quiz {quiz.id} has no case {position}")
    if any(a.position == position for a in attempt.answers):
        raise InvalidInput(f"case {position} is answered already")
    case = quiz.items[position - 1].case
    accepted = diagnosis_terms(case.diagnosis, [(c.system, c.code, c.display) for c in case.codes], synonyms_of)
    result = score(answer, accepted) if accepted else Score(False, "")
    row = QuizAnswer(position=position, answer=answer.strip()[:5000], correct=result.correct, matched=result.matched)
    attempt.answers.append(row)
    if len(attempt.answers) == len(quiz.items):
        attempt.finished_at = utcnow()
    session.flush()
    return row, result


@dataclass(frozen=True)
class AttemptSummary:
    id: int
    started_at: datetime
    finished_at: datetime | None
    answered: int
    correct: int
    total: int


def summary(session: Session, attempt: QuizAttempt) -> AttemptSummary:
    total = len(session.get_one(Quiz, attempt.quiz_id).items)
    return AttemptSummary(attempt.id, attempt.started_at, attempt.finished_at, len(attempt.answers),
                          sum(1 for a in attempt.answers if a.correct), total)


def history(session: Session, user: User, quiz_id: int) -> list[AttemptSummary]:
    quiz = get_quiz(session, user, quiz_id)
    attempts = session.scalars(select(QuizAttempt).where(QuizAttempt.quiz_id == quiz.id, QuizAttempt.user_id == user.id)
                               .order_by(QuizAttempt.started_at.desc(), QuizAttempt.id.desc()))
    return [summary(session, a) for a in attempts]
