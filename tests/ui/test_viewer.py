"""The zero-footprint viewer in Debian's headless Chromium: real cases sent over DICOM, a real HTTP
server, the Vite-built Cornerstone3D bundle; assertions on the pixels and text a user sees."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pynetdicom import AE
from sqlalchemy import select

from archive import folders
from archive.models import Case, User
from ui import STATIC

from ..senders import register_ae
from ..peers import LiveServer
from ..search.test_archive_search import teaching_case

pytestmark = [pytest.mark.browser, pytest.mark.peers]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "viewer"

# the displayed canvas as the user sees it: how many pixels are lit, and a fingerprint of them all
CANVAS_PIXELS = """(section) => {
  const canvas = document.querySelector(`${section} canvas`);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0, sum = 0, hash = 0;
  for (let i = 0; i < data.length; i += 4) {
    const v = data[i] + data[i + 1] + data[i + 2];
    if (v > 24) lit += 1;
    sum += v;
    hash = (hash * 31 + v) | 0;
  }
  return { lit: lit / (data.length / 4), sum, hash };
}"""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The browser exercises the page, not the database: SQLite only (the API tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'casebank.sqlite3'}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not (STATIC / "viewer" / "viewer.js").is_file():
        pytest.fail("the viewer bundle is missing: run `make viewer` (npm ci and vite build in ui/viewer)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nviewer screenshots in {ARTIFACTS}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_case(chromium, live: LiveServer, name: str, case_id: int):  # type: ignore[no-untyped-def]
    """A fresh browser context: log in through the form, land on the case page, wait for a drawn image."""
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live.url}/login?next=/cases/{case_id}")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"pw-{name}-for-tests-only")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/cases/{case_id}")
    wait_for_image(page, errors)
    return page


def wait_for_image(page, errors: list[str] | None = None) -> None:  # type: ignore[no-untyped-def]
    try:
        page.wait_for_selector("#viewer[data-ready=true] .cb-viewport canvas", timeout=30_000)
        page.wait_for_function(f"() => ({CANVAS_PIXELS})('.cb-series').lit > 0.02", timeout=30_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "failed.png"))
        raise AssertionError(f"no image drawn; page errors {errors}, viewer error "
                             f"{page.get_attribute('#viewer', 'data-error')}") from None


def pixels(page) -> dict:  # type: ignore[no-untyped-def]
    page.wait_for_timeout(150)  # one animation frame or more: Cornerstone renders on the next frame
    return page.evaluate(CANVAS_PIXELS, ".cb-series")


def window_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.inner_text(".cb-window")


def drag_window(page) -> None:  # type: ignore[no-untyped-def]
    box = page.locator(".cb-viewport canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 80, y + 50, steps=10)
    page.mouse.up()


def case_with(casebank, files: tuple[str, ...], title: str) -> int:  # type: ignore[no-untyped-def]
    """A TCE export of ``files`` sent over DICOM; each object is offered in its own transfer syntax
    (compressed ones too, which the other tests' sender does not offer)."""
    objects = teaching_case(title, "Teaching diagnosis", modality_files=files)
    register_ae(casebank, "PACS1", "pacs", host="127.0.0.1")  # a trusted PACS: the author's folder
    ae = AE(ae_title="PACS1")
    for sop_class, syntax in sorted({(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in objects}):
        ae.add_requested_context(sop_class, syntax)
    with LiveServer(casebank) as live:
        association = ae.associate("127.0.0.1", live.dicom_port, ae_title=live.ae_title)
        assert association.is_established
        try:
            assert [association.send_c_store(ds).Status for ds in objects] == [0] * len(objects)
        finally:
            association.release()
    with casebank.database.session() as session:
        return session.scalars(select(Case.id)).one()


def test_window_presets_drag_and_saved_default_for_everyone(casebank, make_user, chromium):
    alice, bob = make_user("alice"), make_user("bob")
    case_id = case_with(casebank, ("CT_small.dcm",), "Lung nodule")
    with casebank.database.session() as session:
        owner = session.get(User, alice.id)
        folders.grant(session, owner, folders.personal_folder(session, owner), session.get(User, bob.id), view=True)

    with LiveServer(casebank) as live:
        page = open_case(chromium, live, "alice", case_id)
        page.screenshot(path=str(ARTIFACTS / "ct-opened.png"))
        opened, opened_window = pixels(page), window_text(page)
        assert opened["lit"] > 0.05, opened
        assert re.fullmatch(r"W -?\d+ L -?\d+", opened_window)

        page.click("button:text-is('Lung')")
        page.wait_for_function("() => document.querySelector('.cb-window').textContent === 'W 1500 L -600'")
        assert pixels(page)["hash"] != opened["hash"]
        page.screenshot(path=str(ARTIFACTS / "ct-lung.png"))

        drag_window(page)
        page.wait_for_function("() => document.querySelector('.cb-window').textContent !== 'W 1500 L -600'")
        dragged = window_text(page)
        page.screenshot(path=str(ARTIFACTS / "ct-dragged.png"))

        page.click("button:text-is('Save as default')")
        page.wait_for_selector(".cb-status:text-is('Saved as default')")
        page.reload()
        wait_for_image(page)
        assert window_text(page) == dragged
        viewer = page.request.get(f"{live.url}/api/cases/{case_id}/viewer").json()
        saved = viewer["series"][0]["display"]
        assert f"W {round(saved['window_width'])} L {round(saved['window_center'])}" == dragged
        assert saved["crop"]["width"] > 0 and viewer["can_edit"] is True

        other = open_case(chromium, live, "bob", case_id)  # view right only
        assert window_text(other) == dragged
        assert other.locator("button:text-is('Save as default')").count() == 0
        refused = other.request.put(f"{live.url}/api/series/{viewer['series'][0]['id']}/display",
                                    data={"window_center": 40, "window_width": 400})
        assert refused.status == 403 and refused.headers["content-type"].startswith("application/problem+json")
        other.screenshot(path=str(ARTIFACTS / "ct-viewer-only.png"))


def test_the_dicom_endpoint_needs_the_view_right(casebank, make_user):
    make_user("alice"), make_user("carol")
    case_id = case_with(casebank, ("CT_small.dcm",), "Lung nodule")
    with LiveServer(casebank) as live:
        owner, stranger = requests.Session(), requests.Session()
        for session, name in ((owner, "alice"), (stranger, "carol")):
            session.post(f"{live.url}/api/session", json={"username": name, "password": f"pw-{name}-for-tests-only"}).raise_for_status()
        instance_id = owner.get(f"{live.url}/api/cases/{case_id}/viewer").json()["series"][0]["instance_ids"][0]
        stored = owner.get(f"{live.url}/api/instances/{instance_id}/dicom")
        assert stored.status_code == 200 and stored.headers["content-type"] == "application/dicom"
        assert stored.content[128:132] == b"DICM"
        assert stranger.get(f"{live.url}/api/instances/{instance_id}/dicom").status_code == 404  # as if it did not exist


@pytest.mark.parametrize("name", [
    "CT_small.dcm",  # CT, 16-bit signed, explicit little endian
    "MR_small.dcm",  # MR, 16-bit
    "examples_ybr_color.dcm",  # US, 30-frame cine, YBR, JPEG baseline
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, RGB
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "JPEG2000.dcm",  # JPEG 2000
    "MR_small_RLE.dcm",  # RLE lossless
    "DX_monochrome1.dcm",  # DX, MONOCHROME1 (synthetic: pydicom ships no radiograph)
    "CT_jpeg_lossless_sv1.dcm",  # JPEG Lossless SV1, process 14 (encoded by dcmtk's dcmcjpeg)
])
def test_each_image_kind_is_drawn_and_windowed(casebank, make_user, chromium, name):
    make_user("alice")
    case_id = case_with(casebank, (name,), f"Kind {name}")
    with LiveServer(casebank) as live:
        page = open_case(chromium, live, "alice", case_id)
        before = pixels(page)
        assert before["lit"] > 0.02, before
        page.click("button:text-is('Brain')")
        page.wait_for_function("() => document.querySelector('.cb-window').textContent === 'W 80 L 40'")
        page.screenshot(path=str(ARTIFACTS / f"kind-{name}.png"))
        assert pixels(page)["hash"] != before["hash"]


def test_cine_and_scrolling_through_a_multi_frame_ultrasound(casebank, make_user, chromium):
    make_user("alice")
    case_id = case_with(casebank, ("examples_ybr_color.dcm",), "Ultrasound cine")
    with LiveServer(casebank) as live:
        page = open_case(chromium, live, "alice", case_id)
        assert page.inner_text(".cb-position") == "Im 1/30"
        page.focus(".cb-viewport")
        page.keyboard.press("ArrowDown")
        page.wait_for_function("() => document.querySelector('.cb-position').textContent === 'Im 2/30'")
        page.click("button:text-is('Play')")
        page.wait_for_function("() => !['Im 1/30', 'Im 2/30'].includes(document.querySelector('.cb-position').textContent)")
        page.click("button:text-is('Pause')")
        assert page.locator("button:text-is('Play')").count() == 1


PIXEL_AT = """([section, fx, fy]) => {
  const canvas = document.querySelector(`${section} canvas`);
  const x = Math.floor(canvas.width * fx), y = Math.floor(canvas.height * fy);
  const [r, g, b] = canvas.getContext('2d').getImageData(x, y, 1, 1).data;
  return r + g + b;
}"""


def test_monochrome1_shows_high_values_dark(casebank, make_user, chromium):
    """The synthetic DX is MONOCHROME1: its disc (higher values than the left of the image) is dark."""
    make_user("alice")
    case_id = case_with(casebank, ("DX_monochrome1.dcm",), "Radiograph")
    with LiveServer(casebank) as live:
        page = open_case(chromium, live, "alice", case_id)
        page.wait_for_timeout(150)
        disc = page.evaluate(PIXEL_AT, [".cb-series", 0.5, 0.5])
        left = page.evaluate(PIXEL_AT, [".cb-series", 0.08, 0.1])
        page.screenshot(path=str(ARTIFACTS / "dx-monochrome1.png"))
        assert disc < left, (disc, left)
        opened = window_text(page)
        page.click("button:text-is('Bone')")
        page.wait_for_function("() => document.querySelector('.cb-window').textContent === 'W 1500 L 300'")
        page.click("button:text-is('Reset')")  # back to how it opens, inversion included
        page.wait_for_function(f"() => document.querySelector('.cb-window').textContent === '{opened}'")
        page.wait_for_timeout(150)
        assert page.evaluate(PIXEL_AT, [".cb-series", 0.5, 0.5]) < page.evaluate(PIXEL_AT, [".cb-series", 0.08, 0.1])


def test_a_saved_crop_is_how_the_series_opens_again(casebank, make_user, chromium):
    make_user("alice")
    case_id = case_with(casebank, ("CT_small.dcm",), "Crop")
    with LiveServer(casebank) as live:
        page = open_case(chromium, live, "alice", case_id)
        whole = pixels(page)
        box = page.locator(".cb-viewport canvas").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down(button="right")  # zoom in
        page.mouse.move(x, y + 120, steps=12)
        page.mouse.up(button="right")
        zoomed = pixels(page)
        assert zoomed["hash"] != whole["hash"]
        page.click("button:text-is('Save as default')")
        page.wait_for_selector(".cb-status:text-is('Saved as default')")
        crop = page.request.get(f"{live.url}/api/cases/{case_id}/viewer").json()["series"][0]["display"]["crop"]
        assert 0 < crop["width"] < 128 and 0 < crop["height"] < 128  # a part of the 128 x 128 image
        page.reload()
        wait_for_image(page)
        again = pixels(page)
        page.screenshot(path=str(ARTIFACTS / "ct-crop-reopened.png"))
        assert abs(again["sum"] - zoomed["sum"]) < abs(again["sum"] - whole["sum"]), (whole, zoomed, again)
