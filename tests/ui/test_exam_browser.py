"""Examiner and candidate screens in two browser contexts (two machines, in effect): the examiner
reveals and moves on, the candidate's screen follows within a second, and nothing the candidate's
browser receives carries a hidden field of a case not yet revealed. Screenshots go to
test-artifacts/exam/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ..archive.test_quizzes import BRAIN, LIVER, two_cases  # noqa: F401 (fixture)
from ..peers import LiveServer
from .test_browser_scenario import logged_in
from .test_viewer import CHROMIUM, CHROMIUM_ARGS, chromium, database_url  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.peers]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "exam"
BRAIN_SECRETS = (BRAIN["title"], BRAIN["diagnosis"], BRAIN["differential"], BRAIN["discussion"], "cisterns")


def test_the_candidate_follows_the_examiner_and_never_receives_what_is_hidden(casebank, two_cases, chromium):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    liver, brain = two_cases
    with LiveServer(casebank) as live:
        examiner = logged_in(chromium, live, "alice")
        examiner.goto(f"{live.url}/quizzes")
        examiner.fill("input[name=title]", "Friday teaching")
        examiner.check("input[name=source][value=cases]")
        examiner.fill("input[name=case_ids]", f"{liver}, {brain}")
        examiner.check("input[name=mode][value=self_test]")
        examiner.click("button:text('Make quiz')")
        examiner.click("button:text('Run as a live exam')")
        link = examiner.get_attribute("#candidate-link", "href")

        candidate_context = chromium.new_context(viewport={"width": 1440, "height": 900})  # no login
        received: list[str] = []
        candidate_context.on("response", lambda r: received.append(r.url))
        bodies: list[bytes] = []

        def keep(response) -> None:  # type: ignore[no-untyped-def]
            if "/events" in response.url:
                return  # a stream; its events are checked through the page below
            try:
                bodies.append(response.body())
            except Exception:
                pass

        candidate_context.on("response", keep)
        candidate = candidate_context.new_page()
        candidate.goto(link)
        candidate.wait_for_function("() => document.getElementById('link-state').textContent === 'live'")
        candidate.wait_for_function("() => document.getElementById('image').naturalWidth > 0")
        assert candidate.inner_text("#label") == "Case 1"
        candidate.screenshot(path=str(SHOTS / "1-candidate-case-1.png"))
        examiner.screenshot(path=str(SHOTS / "2-examiner.png"), full_page=True)

        seen_text: list[str] = []
        for button, check in (("Show the answer", f"() => document.getElementById('answer').textContent.includes({LIVER['diagnosis']!r})"),
                              ("Next case ▶", "() => document.getElementById('label').textContent === 'Case 2'")):
            started = time.monotonic()
            examiner.click(f"button:text('{button}')")
            candidate.wait_for_function(check, timeout=1000)  # within one second of the click's reply
            seen_text.append(candidate.content())
            assert time.monotonic() - started < 2.0
        candidate.wait_for_function("() => document.getElementById('image').naturalWidth > 0")
        candidate.screenshot(path=str(SHOTS / "3-candidate-case-2.png"))
        assert candidate.inner_text("#answer") == "" and candidate.is_hidden("#answer")

        everything = b"\n".join(bodies).decode("latin-1") + "\n".join(seen_text)
        for secret in BRAIN_SECRETS:
            assert secret not in everything, secret
        assert any("/images/" in url for url in received) and not any("/dicom" in url for url in received)
        candidate_context.close()
