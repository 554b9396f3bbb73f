"""Quizzes through the REST API and the candidate's screen: hidden fields never reach a candidate,
the examiner drives and the screen's event stream follows, self-tests score synonyms."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from sqlalchemy import select

from archive import cases, folders, users
from archive.cases import CaseUpdate, Code
from archive.models import Case

from ..conftest import login
from ..peers import LiveServer
from ..search.test_archive_search import cases_arrive, teaching_case

pytestmark = pytest.mark.peers

LIVER = dict(title="Arterially enhancing liver lesion", diagnosis="Hepatocellular carcinoma",
             differential="Focal nodular hyperplasia", discussion="Washout on the portal venous phase",
             history="Cirrhosis, rising AFP", keywords=["washout-sign"])
BRAIN = dict(title="Thunderclap headache", diagnosis="Subarachnoid haemorrhage", differential="Migraine",
             discussion="Blood in the basal cisterns", history="Worst headache of life", keywords=["cisterns"])
SECRET_WORDS = ("Arterially enhancing", "Hepatocellular", "Focal nodular", "Washout on", "washout-sign",
                "Findings of", "Liver cell carcinoma")


@pytest.fixture
def two_cases(casebank, make_user):
    """alice's two teaching cases, their text and codes set; bob may view her folder; carol nothing."""
    alice, bob = make_user("alice"), make_user("bob")
    make_user("carol")
    cases_arrive(casebank, [teaching_case(LIVER["title"], LIVER["diagnosis"], codes=[("I10", "C22.0", "Liver cell carcinoma")]),
                            teaching_case(BRAIN["title"], BRAIN["diagnosis"], modality_files=("MR_small.dcm",))])
    with casebank.database.session() as session:
        owner = session.get_one(type(alice), alice.id)
        found = {c.title: c.id for c in session.scalars(select(Case))}
        for text in (LIVER, BRAIN):
            fields = {k: v for k, v in text.items() if k not in ("title", "keywords")}
            cases.update_case(session, owner, found[text["title"]], CaseUpdate(keywords=text["keywords"], **fields))
        cases.update_case(session, owner, found[LIVER["title"]],
                          CaseUpdate(codes=[Code("ICD10", "C22.0", "Liver cell carcinoma")]))
        folders.grant(session, owner, folders.personal_folder(session, owner), session.get_one(type(bob), bob.id), view=True)
    return found[LIVER["title"]], found[BRAIN["title"]]


def instance_ids(casebank, case_id: int) -> list[int]:
    with casebank.database.session() as session:
        case = session.get_one(Case, case_id)
        return [i.id for st in case.studies for se in st.series for i in se.instances if se.modality not in ("SR", "KO")]


def test_the_candidate_screen_never_carries_a_hidden_field(casebank, two_cases, client):
    liver, brain = two_cases
    login(client, "alice")
    quiz = client.post("/api/quizzes", json={"title": "Abdomen", "case_ids": [liver, brain], "mode": "exam"})
    assert quiz.status_code == 201, quiz.text
    assert quiz.json()["hidden"] == ["title", "findings", "diagnosis", "differential", "discussion", "codes", "keywords", "catalogue"]
    live = client.post(f"/api/quizzes/{quiz.json()['id']}/sessions").json()
    token_url = live["candidate_url"]

    client.cookies.clear()  # the candidate: no account, only the link
    page = client.get(token_url)
    state = client.get(f"{token_url}/state").json()
    assert page.status_code == 200 and state["case"]["label"] == "Case 1"
    assert state["case"]["fields"] == {"history": LIVER["history"]}  # history is what candidates are given
    assert [s["label"] for s in state["case"]["series"]] == ["CT series 1"]  # its description names the case
    shown = [page.text, json.dumps(state)]
    [image] = state["case"]["series"][0]["instance_ids"]
    png = client.get(f"{token_url}/images/{image}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    shown.append(png.content.decode("latin-1"))
    for text in shown:
        for secret in SECRET_WORDS:
            assert secret not in text, secret
    # the next case's images, and any other image, are not served before the examiner moves on
    for other in instance_ids(casebank, brain):
        assert client.get(f"{token_url}/images/{other}.png").status_code == 404
    assert client.get("/exam/not-a-token/state").status_code == 404

    login(client, "alice")
    refused = client.post(f"/api/quiz-sessions/{live['id']}/reveal")
    assert refused.status_code == 422 and "at the end" in refused.json()["detail"]
    moved = client.post(f"/api/quiz-sessions/{live['id']}/next").json()
    assert moved["position"] == 2 and moved["revision"] == 1
    client.post(f"/api/quiz-sessions/{live['id']}/finish")
    client.cookies.clear()
    over = client.get(f"{token_url}/state").json()
    assert over["finished"] and [a["diagnosis"] for a in over["answers"]] == [LIVER["diagnosis"], BRAIN["diagnosis"]]


def test_only_the_owner_drives_and_only_viewers_of_every_case_see_the_quiz(casebank, two_cases, client):
    liver, brain = two_cases
    login(client, "alice")
    quiz_id = client.post("/api/quizzes", json={"title": "Mixed", "case_ids": [liver, brain]}).json()["id"]
    live = client.post(f"/api/quizzes/{quiz_id}/sessions").json()
    login(client, "bob")  # views the folder: may take the quiz, may not run it
    assert client.get(f"/api/quizzes/{quiz_id}").status_code == 200
    assert client.post(f"/api/quizzes/{quiz_id}/sessions").status_code == 403
    assert client.post(f"/api/quiz-sessions/{live['id']}/next").status_code == 404
    login(client, "carol")  # sees none of the cases: the quiz does not exist for her
    assert client.get(f"/api/quizzes/{quiz_id}").status_code == 404
    assert client.post(f"/api/quizzes/{quiz_id}/attempts").status_code == 404
    assert client.post("/api/quizzes", json={"title": "Theirs", "case_ids": [liver]}).status_code == 404
    assert client.get("/api/quizzes").json() == []


def test_a_quiz_from_a_folder_or_a_search(casebank, two_cases, client):
    liver, brain = two_cases
    login(client, "alice")
    with casebank.database.session() as session:
        folder_id = folders.personal_folder(session, users.get_user(session, "alice")).id
    by_folder = client.post("/api/quizzes", json={"title": "All mine", "folder_id": folder_id}).json()
    assert by_folder["cases"] == 2 and by_folder["source"] == "folder /alice"
    deadline = time.monotonic() + 10
    while (found := client.post("/api/quizzes", json={"title": "Bleeds", "search": "subarachnoid"})).status_code != 201:
        assert time.monotonic() < deadline, found.text  # the index catches up with the text edit
        time.sleep(0.2)
    assert found.json()["cases"] == 1
    empty = client.post("/api/quizzes", json={"title": "None", "search": "xyzzy"})
    assert empty.status_code == 422 and "no cases found" in empty.json()["detail"]


def test_a_self_test_scores_a_synonym_right_and_a_wrong_answer_wrong_and_keeps_the_history(casebank, two_cases, client):
    liver, brain = two_cases
    login(client, "bob")
    quiz_id = client.post("/api/quizzes", json={"title": "Self", "case_ids": [liver, brain]}).json()["id"]
    attempt = client.post(f"/api/quizzes/{quiz_id}/attempts").json()
    right = client.post(f"/api/attempts/{attempt['id']}/answers", json={"position": 1, "answer": "hepatoma"}).json()
    assert right["correct"] and right["matched"].lower() == "hepatoma"
    assert right["model_answer"]["diagnosis"] == LIVER["diagnosis"]  # a self-test shows the answer at once
    wrong = client.post(f"/api/attempts/{attempt['id']}/answers", json={"position": 2, "answer": "migraine"}).json()
    assert not wrong["correct"] and wrong["finished"]
    again = client.post(f"/api/attempts/{attempt['id']}/answers", json={"position": 2, "answer": "SAH"})
    assert again.status_code == 422
    second = client.post(f"/api/quizzes/{quiz_id}/attempts").json()
    client.post(f"/api/attempts/{second['id']}/answers", json={"position": 2, "answer": "SAH"})
    history = client.get(f"/api/quizzes/{quiz_id}/attempts").json()
    assert [(h["correct"], h["answered"], h["total"]) for h in history] == [(1, 1, 2), (1, 2, 2)]
    login(client, "alice")  # someone else's attempt does not exist for her
    assert client.post(f"/api/attempts/{attempt['id']}/answers", json={"position": 1, "answer": "x"}).status_code == 404


def test_the_candidate_event_stream_follows_the_examiner_within_a_second(casebank, two_cases):
    liver, brain = two_cases
    with casebank.database.session() as session:
        alice = users.get_user(session, "alice")
        token = users.issue_token(session, alice)
    headers = {"Authorization": f"Bearer {token}"}
    with LiveServer(casebank) as live:
        quiz_id = requests.post(f"{live.url}/api/quizzes", headers=headers, timeout=10,
                                json={"title": "Live", "case_ids": [liver, brain], "mode": "self_test"}).json()["id"]
        session_ = requests.post(f"{live.url}/api/quizzes/{quiz_id}/sessions", headers=headers, timeout=10).json()
        events: list[tuple[float, dict]] = []

        def listen() -> None:
            with requests.get(live.url + session_["candidate_url"] + "/events", stream=True, timeout=30) as stream:
                for line in stream.iter_lines(decode_unicode=True):
                    if line.startswith("data: "):
                        events.append((time.monotonic(), json.loads(line[6:])))
                        if len(events) == 3:
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        while not events:
            time.sleep(0.05)
        for action in ("reveal", "next"):
            sent = time.monotonic()
            requests.post(f"{live.url}/api/quiz-sessions/{session_['id']}/{action}", headers=headers, timeout=10)
            while len(events) < (2 if action == "reveal" else 3):
                assert time.monotonic() - sent < 1.0, f"the screen did not follow '{action}' within a second"
                time.sleep(0.02)
        listener.join(5)
    first, revealed, moved = (state for _, state in events)
    assert first["case"]["answer"] is None and revealed["case"]["answer"]["diagnosis"] == LIVER["diagnosis"]
    assert moved["case"]["position"] == 2 and moved["case"]["answer"] is None
    assert BRAIN["diagnosis"] not in json.dumps(events)


def test_research_cases_cannot_be_quizzed(casebank, two_cases, client):
    from archive.models import Folder, FolderKind, Project

    liver, _ = two_cases
    with casebank.database.session() as session:
        project = Project(name="p", protocol_id="P-1")
        session.add(project)
        session.flush()
        alice = users.get_user(session, "alice")
        folder = Folder(name="Project p", kind=FolderKind.PROJECT, owner_id=alice.id, project_id=project.id)
        session.add(folder)
        session.flush()
        session.get_one(Case, liver).folder_id = folder.id
        from archive.models import ProjectMember, ProjectRole

        session.add(ProjectMember(project_id=project.id, user_id=alice.id, role=ProjectRole.PRINCIPAL_INVESTIGATOR))
    login(client, "alice")
    refused = client.post("/api/quizzes", json={"title": "No", "case_ids": [liver]})
    assert refused.status_code == 403 and "research project" in refused.json()["detail"]



def test_a_quiz_as_powerpoint_keeps_hidden_fields_in_the_speaker_notes_only(casebank, two_cases, client):
    import io

    from pptx import Presentation

    liver, brain = two_cases
    login(client, "alice")
    quiz_id = client.post("/api/quizzes", json={"title": "Deck", "case_ids": [liver, brain], "mode": "exam"}).json()["id"]
    answer = client.get(f"/api/quizzes/{quiz_id}/export/pptx")
    assert answer.status_code == 200 and answer.content[:2] == b"PK"
    deck = Presentation(io.BytesIO(answer.content))
    shown = " ".join(shape.text_frame.text for slide in deck.slides for shape in slide.shapes if shape.has_text_frame)
    notes = " ".join(slide.notes_slide.notes_text_frame.text for slide in deck.slides if slide.has_notes_slide)
    assert "Case 1" in shown and "Case 2" in shown and LIVER["history"] in shown
    for secret in (LIVER["title"], LIVER["diagnosis"], BRAIN["diagnosis"], "Findings of", LIVER["discussion"]):
        assert secret not in shown, secret
    assert LIVER["diagnosis"] in notes and BRAIN["diagnosis"] in notes
    assert deck.core_properties.author == "Casebank"
    login(client, "bob")  # may take the quiz, but the deck holds the answers: its owner's only
    assert client.get(f"/api/quizzes/{quiz_id}/export/pptx").status_code == 403
