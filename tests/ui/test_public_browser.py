"""A public link in Debian's headless Chromium: an editor publishes a case from its page; a fresh
browser with no login opens the link and sees the images (drawn, not blank) and the teaching text,
scrolls a stack, and nothing it receives names the author, the GMC number or the sender; after the
editor withdraws the link it answers 404. Screenshots go to test-artifacts/public/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from ..peers import LiveServer
from .test_browser_scenario import logged_in
from .test_public_links import SECRETS, filed_case
from .test_viewer import CHROMIUM, CHROMIUM_ARGS, chromium, database_url  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.peers]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "public"

# how many pixels of each page image are lit, drawn as the browser decoded them
IMAGE_PIXELS = """() => [...document.querySelectorAll('.stack img')].map((img) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 24) lit += 1;
  return { width: img.clientWidth, lit: lit / (data.length / 4) };
})"""
IMAGES_LOADED = "() => [...document.querySelectorAll('.stack img')].every((img) => img.complete && img.naturalWidth > 0)"


def three_slice_ct(images) -> None:  # type: ignore[no-untyped-def]
    """The three CT copies become one series of three images, so the page has a stack to scroll."""
    series_uid = generate_uid()
    for number, ds in enumerate(images[:3], start=1):
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, 1, number
        ds.SeriesDescription = "Arterial phase"


def test_an_editor_publishes_a_stranger_opens_the_link_and_after_withdrawal_it_is_gone(casebank, make_user, chromium):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    make_user("alice")
    case_id = filed_case(casebank, files=("CT_small.dcm", "CT_small.dcm", "CT_small.dcm", "MR_small.dcm"), tweak=three_slice_ct)
    with LiveServer(casebank) as live:
        alice = logged_in(chromium, live, "alice")
        alice.goto(f"{live.url}/cases/{case_id}")
        alice.wait_for_selector("#share-public[data-loaded=true]")
        assert alice.inner_text(".public-link-list") == "No live public links."
        alice.fill("#share-public input[name=expires_in_days]", "7")
        alice.click("#share-public button:text-is('Publish')")
        alice.wait_for_selector(".public-url")
        url = alice.input_value(".public-url")
        assert url.startswith(f"{live.url}/p/")
        assert "It works until" in alice.inner_text(".public-created") and "4 images on the page" in alice.inner_text(".public-created")
        alice.screenshot(path=str(SHOTS / "1-link-created.png"), full_page=True)

        stranger = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
        responses = []
        stranger.on("response", lambda response: responses.append(response))
        errors: list[str] = []
        stranger.on("pageerror", lambda error: errors.append(str(error)))
        opened = stranger.goto(url)
        assert opened.status == 200
        assert not stranger.context.cookies()  # no login, no session
        stranger.wait_for_function(IMAGES_LOADED, timeout=20_000)
        drawn = stranger.evaluate(IMAGE_PIXELS)
        assert len(drawn) == 2 and all(image["lit"] > 0.05 for image in drawn), drawn
        assert drawn[0]["width"] >= 800  # large: the images come first, across the page
        text = stranger.inner_text("main")
        assert "Liver mass in cirrhosis" in text and "Arterially enhancing liver mass with washout" in text
        assert "Hepatocellular carcinoma" in text and "Liver cell carcinoma" in text
        assert text.index("Image 1 of 3") < text.index("Findings")
        stranger.screenshot(path=str(SHOTS / "2-public-page.png"), full_page=True)

        first_src = stranger.get_attribute(".stack img", "src")
        stranger.focus(".stack img")
        stranger.keyboard.press("ArrowDown")  # the stack scrolls
        stranger.wait_for_function("() => document.querySelector('.stack output').textContent === '2'")
        assert stranger.get_attribute(".stack img", "src") != first_src
        stranger.wait_for_function(IMAGES_LOADED)
        assert stranger.evaluate(IMAGE_PIXELS)[0]["lit"] > 0.05
        stranger.wait_for_load_state("networkidle")
        assert errors == []

        received = [(r.url, r.body()) for r in responses if r.status == 200]
        assert any(u.endswith("/rendered") for u, _ in received) and any("public.js" in u for u, _ in received)
        for response_url, body in [("page", stranger.content().encode()), *received]:
            for secret in SECRETS:
                assert secret.encode() not in body, f"{secret!r} in {response_url}"
        thumbnail = stranger.request.get(re.search(r'property="og:image" content="([^"]+)"', stranger.content()).group(1))
        assert thumbnail.status == 200
        (SHOTS / "3-thumbnail.jpg").write_bytes(thumbnail.body())

        alice.goto(f"{live.url}/cases/{case_id}")
        alice.wait_for_selector("#share-public[data-loaded=true]")
        listed = alice.inner_text(".public-link-list li")
        assert "1 view" in listed and "4 images" in listed
        alice.locator("#share-public").screenshot(path=str(SHOTS / "4-share-section.png"))
        alice.click(".public-link-list button:text-is('Withdraw')")
        alice.wait_for_selector(".public-link-list li.empty")
        assert "1 earlier link no longer works" in alice.inner_text(".public-link-list")

        gone = stranger.goto(url)
        assert gone.status == 404 and "does not work" in stranger.inner_text("main")
        assert "Liver" not in stranger.content()
        stranger.screenshot(path=str(SHOTS / "5-withdrawn.png"), full_page=True)
