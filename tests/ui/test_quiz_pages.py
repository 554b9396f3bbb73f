"""The quiz pages: making a quiz from a folder (and a bad form kept with its message), taking a
self-test through the forms, and the examiner's screen with the candidates' link."""

from __future__ import annotations

import re

import pytest

from archive import folders, users

from ..archive.test_quizzes import BRAIN, LIVER, two_cases  # noqa: F401 (fixture)
from ..conftest import login

pytestmark = pytest.mark.peers


def csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def test_make_a_quiz_take_it_and_run_it_live(casebank, two_cases, client):  # noqa: F811
    login(client, "alice")
    with casebank.database.session() as session:
        folder_id = folders.personal_folder(session, users.get_user(session, "alice")).id
    page = client.get("/quizzes")
    assert page.status_code == 200 and "New quiz" in page.text and "/alice" in page.text

    token = csrf(client, "/quizzes")
    bad = client.post("/quizzes", data={"csrf_token": token, "title": "Rapid reporting", "source": "cases",
                                        "case_ids": "12, x7", "mode": "exam", "hidden": ["diagnosis"], "seconds_per_case": "30"})
    assert bad.status_code == 422 and "case numbers are digits; not x7" in bad.text
    assert 'value="Rapid reporting"' in bad.text and 'value="12, x7"' in bad.text  # typed values kept

    made = client.post("/quizzes", data={"csrf_token": token, "title": "Rapid reporting", "source": "folder",
                                         "folder_id": str(folder_id), "mode": "self_test", "hidden": ["title", "diagnosis"]},
                       follow_redirects=False)
    assert made.status_code == 303
    quiz_path = made.headers["location"]
    quiz_page = client.get(quiz_path)
    assert "Start a self-test" in quiz_page.text and "Run as a live exam" in quiz_page.text

    started = client.post(f"{quiz_path}/attempts", data={"csrf_token": token}, follow_redirects=False)
    case_path = started.headers["location"]
    question = client.get(case_path)
    assert "Your diagnosis" in question.text
    assert case_path.endswith("/cases/1")  # a folder's cases in the order they arrived: the liver case first
    answered = client.post(case_path, data={"csrf_token": token, "answer": "hepatoma"})
    assert answered.status_code == 200 and "Right" in answered.text and LIVER["diagnosis"] in answered.text
    second = client.post(case_path.replace("/cases/1", "/cases/2"), data={"csrf_token": token, "answer": "migraine"})
    assert "Not quite" in second.text and BRAIN["diagnosis"] in second.text
    score = client.get(case_path.rsplit("/cases", 1)[0])
    assert "1 of 2 right" in score.text

    live = client.post(f"{quiz_path}/sessions", data={"csrf_token": token}, follow_redirects=False)
    examiner = client.get(live.headers["location"])
    assert "Candidates' screen" in examiner.text and "/exam/" in examiner.text
    assert LIVER["diagnosis"] in examiner.text  # the examiner sees the answer; the candidates do not
    candidate = re.search(r'id="candidate-link" href="[^"]*(/exam/[^"]+)"', examiner.text).group(1)
    client.cookies.clear()
    screen = client.get(candidate)
    assert screen.status_code == 200 and "Case 1" in screen.text and LIVER["diagnosis"] not in screen.text
