"""The radiologist's path through the product in Debian's headless Chromium: log in, find a case by
a facet, open the viewer, change the window, save it as the default and see it kept after a
reload; share the folder with a second user, who can then view but not edit; a third user sees
nothing of it. Screenshots go to test-artifacts/scenario/."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..peers import LiveServer
from .test_viewer import CHROMIUM, CHROMIUM_ARGS, case_with, chromium, database_url, wait_for_image, window_text  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.peers]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "scenario"


def logged_in(chromium, live: LiveServer, name: str):  # noqa: F811
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live.url}/")
    assert page.url.startswith(f"{live.url}/login")  # the archive needs a login first
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"pw-{name}-for-tests-only")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/")
    return page


def test_find_by_facet_window_save_share_view_only_and_invisible_to_others(casebank, make_user, chromium):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    make_user("alice"), make_user("bob"), make_user("carol")
    case_id = case_with(casebank, ("CT_small.dcm",), "Pituitary macroadenoma")
    with LiveServer(casebank) as live:
        alice = logged_in(chromium, live, "alice")
        alice.goto(f"{live.url}/search")
        alice.click("[data-facet=modality] a:text-is('CT')")  # find it by a facet
        alice.wait_for_selector(".chip")
        assert alice.inner_text(".total") == "1 case"
        alice.screenshot(path=str(SHOTS / "1-facet.png"), full_page=True)
        alice.click("ol.hits a:text-is('Pituitary macroadenoma')")
        alice.wait_for_url(f"{live.url}/cases/{case_id}")
        wait_for_image(alice)
        alice.click("button:text-is('Abdomen')")
        alice.wait_for_function("() => document.querySelector('.cb-window').textContent === 'W 400 L 40'")
        alice.click("button:text-is('Save as default')")
        alice.wait_for_selector(".cb-status:text-is('Saved as default')")
        alice.reload()
        wait_for_image(alice)
        assert window_text(alice) == "W 400 L 40"
        alice.screenshot(path=str(SHOTS / "2-saved-window.png"), full_page=True)

        alice.goto(f"{live.url}/")
        alice.click("a:text-is('/alice')")
        alice.fill("form[aria-label='Share with a user'] input[name=username]", "bob")
        alice.click("form[aria-label='Share with a user'] button")
        alice.wait_for_selector("tr[data-user=bob]")
        alice.screenshot(path=str(SHOTS / "3-shared.png"), full_page=True)

        bob = logged_in(chromium, live, "bob")
        assert bob.locator("a:text-is('/alice')").count() == 1
        bob.goto(f"{live.url}/cases/{case_id}")
        wait_for_image(bob)
        assert window_text(bob) == "W 400 L 40"  # everyone opens it the saved way
        assert bob.locator("textarea[name=findings]").count() == 0  # view, not edit
        assert bob.locator("button:text-is('Save as default')").count() == 0
        assert bob.locator("#share").count() == 0
        bob.screenshot(path=str(SHOTS / "4-bob-views.png"), full_page=True)

        carol = logged_in(chromium, live, "carol")
        assert "Pituitary" not in carol.content() and carol.locator("a:text-is('/alice')").count() == 0
        carol.goto(f"{live.url}/search?q=pituitary")
        assert carol.inner_text(".total").startswith("0 cases")
        response = carol.goto(f"{live.url}/cases/{case_id}")
        assert response.status == 404 and "Pituitary" not in carol.content()
        carol.screenshot(path=str(SHOTS / "5-carol-forbidden.png"), full_page=True)
