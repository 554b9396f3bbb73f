"""A person sees every changed image: a selection from the PACS whose pixels cleaning would change
waits on the preview page (before beside after, the share of the image blanked) and leaves only
when someone confirms; what went through cleaning says so (113101, Clean Pixel Data)."""

from __future__ import annotations

import io
import re
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from api.edge_app import create_edge_app
from ingest.edge.outbox import Destination
from ingest.edge.selections import Selection, percent
from ingest.edge.service import Edge, EdgeConfig
from ingest.tce.manifest import build_manifest

from .. import dicom_data
from ..csrf_client import BrowserLikeClient
from ..peers import free_port, wait_for_port

CLEAN_PIXEL_DATA, BASIC_PROFILE = "113101", "113100"
HEADER = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyInstanceUID",
          "StudyDate", "StudyTime", "StudyID", "ReferringPhysicianName", "StudyDescription", "InstitutionName",
          "PatientIdentityRemoved")


def identified_ct() -> Dataset:
    """An original CT that says it carries no burned-in text: sent with its pixels unchanged."""
    [ct] = dicom_data.study(["CT_small.dcm"], description="Abdomen")
    ct.PatientName, ct.PatientID, ct.PatientBirthDate = "Smith^John", "9434765919", "19600101"
    ct.AccessionNumber, ct.InstitutionName, ct.PatientIdentityRemoved = "ACC-778899", "St Elsewhere", "NO"
    ct.BurnedInAnnotation = "NO"
    del ct.DeidentificationMethodCodeSequence
    return ct


def scan(rows: int = 240, columns: int = 320, seed: int = 1) -> np.ndarray:
    """A smooth, ultrasound-like bright region on black, with a little noise and no text."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:rows, :columns]
    pixels = 150 - np.hypot(xx - columns / 2, yy - rows * 0.55) + rng.normal(0, 3, (rows, columns))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def burned_in(pixels: np.ndarray, lines: list[tuple[tuple[int, int], str]], size: int) -> np.ndarray:
    """``pixels`` with ``lines`` of text drawn at 255, as a scanner burns in the patient's details."""
    mask = Image.new("L", (pixels.shape[1], pixels.shape[0]), 0)
    draw = ImageDraw.Draw(mask)
    for position, text in lines:
        draw.text(position, text, fill=255, font=ImageFont.load_default(size=size))
    out = pixels.copy()
    out[np.asarray(mask) > 127] = 255
    return out


NAME_AND_NUMBER = [((10, 8), "SMITH JOHN"), ((10, 30), "9434765919")]


def ultrasound(of: Dataset, pixels: np.ndarray, frames: int = 1, **attributes: object) -> Dataset:
    """An ultrasound image of the same patient and study as ``of``."""
    ds = Dataset()
    for keyword in HEADER:
        if keyword in of:
            setattr(ds, keyword, of.data_element(keyword).value)
    ds.SOPClassUID = UltrasoundMultiFrameImageStorage if frames > 1 else UltrasoundImageStorage
    ds.SOPInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "US", 7, 1
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.set_pixel_data(np.stack([pixels] * frames) if frames > 1 else pixels, "MONOCHROME2", 8)
    ds.ensure_file_meta()
    return ds


def edge_at(tmp_path, **config: object) -> Edge:
    """An edge that is not started: what it releases stays in its outbox to be looked at."""
    return Edge(EdgeConfig(data=tmp_path / "edge", archive=Destination("ARCHIVE", "127.0.0.1", free_port()), **config))


def from_pacs(edge: Edge, images: list[Dataset]) -> Selection:
    """The images and their manifest arrive as the PACS sends them (the SCP calls ``receive``)."""
    manifest = build_manifest(images, description="teaching")
    for ds in [*images, manifest]:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        edge.manager.receive(buffer.getvalue(), ds)
    return edge.manager.get(str(manifest.SOPInstanceUID))


def released(edge: Edge, selection: Selection) -> dict[str, Dataset]:
    """What the outbox holds of ``selection``, by the original SOP Instance UID."""
    queued = {str(ds.SOPInstanceUID): ds for ds in map(dcmread, edge.outbox.pending_folder.glob("*.dcm"))}
    selection = edge.manager.get(selection.manifest_uid)
    return {original: queued[sent] for original, sent in selection.released_uids.items()}


def method_codes(ds: Dataset) -> set[str]:
    return {str(item.CodeValue) for item in ds.DeidentificationMethodCodeSequence}


def logged_in(edge: Edge) -> BrowserLikeClient:
    edge.users.add("ajones", display_name="Jones^Ann", gmc="7000001", password="pw")
    client = BrowserLikeClient(create_edge_app(edge))
    assert client.post("/login", data={"username": "ajones", "password": "pw"}, follow_redirects=False).status_code == 303
    return client


def png(client: BrowserLikeClient, url: str) -> np.ndarray:
    answer = client.get(url)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png", url
    assert answer.headers["cache-control"] == "no-store"  # identified pixels are never kept by the browser
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))


def test_a_pacs_selection_with_burned_in_text_waits_for_a_person_who_sees_before_and_after(tmp_path):
    ct = identified_ct()
    us = ultrasound(ct, burned_in(scan(), NAME_AND_NUMBER, 18))
    edge = edge_at(tmp_path)
    selection = from_pacs(edge, [ct, us])
    us_uid, ct_uid = str(us.SOPInstanceUID), str(ct.SOPInstanceUID)

    assert selection.state == "review"
    assert selection.note == "burned-in text found in 1 of 2 image(s): waiting for a person"
    assert edge.outbox.state().pending == 0  # nothing left
    regions = selection.regions_of(us_uid)
    assert regions and any(r.source == "ocr" for r in regions)
    assert selection.cleaning[us_uid].scanned and selection.cleaning[us_uid].changed_fraction > 0
    assert not selection.cleaning[ct_uid].scanned and ct_uid not in selection.regions

    client = logged_in(edge)
    preview_url = f"/selections/{selection.manifest_uid}"
    page = client.get(preview_url)
    assert page.status_code == 200
    text = page.text
    assert f'src="{preview_url}/images/{us_uid}/before.png"' in text and f'src="{preview_url}/images/{us_uid}/after.png"' in text
    assert f"{percent(selection.cleaning[us_uid].changed_fraction)} of the image blanked" in text
    assert "Text read in the image" in text and "Device template" in text  # the legend, in words
    assert "Sent with their pixels unchanged" in text and f'src="{preview_url}/images/{ct_uid}/after.png"' in text
    assert f'src="{preview_url}/images/{ct_uid}/before.png"' not in text
    forms = re.findall(r"<form method=\"post\".*?</form>", text, re.DOTALL)
    assert len(forms) >= 3 and all('name="csrf_token"' in form for form in forms)  # confirm, discard, rectangles
    assert not re.search(r"<script(?![^>]*\bsrc=)", text)  # no inline script: the CSP would refuse it
    assert "script-src 'self'" in page.headers["content-security-policy"]

    before = png(client, f"{preview_url}/images/{us_uid}/before.png")
    after = png(client, f"{preview_url}/images/{us_uid}/after.png")
    assert before.shape == after.shape == (240, 320, 3) and not np.array_equal(before, after)
    for region in regions:
        inside = (slice(region.y + 3, region.y1 - 3), slice(region.x + 3, region.x1 - 3))  # within the outline
        assert np.ptp(after[inside]) == 0 and after[inside].max() == 0, region  # blanked as it will leave
        assert before[inside].max() == 255, region  # the text is still there in the original
    assert edge.outbox.state().pending == 0  # looking sends nothing

    # the person adds a rectangle; the page and the record follow
    keep = [str(i) for i in range(len(regions))]
    edit = client.post(f"{preview_url}/images/{us_uid}/regions", data={"keep": keep, "add": "200,200,60,20"},
                       follow_redirects=False)
    assert edit.status_code == 303
    edited = edge.manager.get(selection.manifest_uid)
    assert edited.regions_of(us_uid)[-1].source == "user"
    assert edited.cleaning[us_uid].changed_fraction > selection.cleaning[us_uid].changed_fraction
    assert f"{percent(edited.cleaning[us_uid].changed_fraction)} of the image blanked" in client.get(preview_url).text
    assert edge.outbox.state().pending == 0

    assert client.post(f"{preview_url}/confirm", follow_redirects=False).status_code == 303
    done = edge.manager.get(selection.manifest_uid)
    assert done.state == "released" and done.note.startswith("confirmed by Ann Jones (GMC 7000001)")
    assert "pixels blanked in 1 of 2 image(s)" in done.note
    sent = released(edge, selection)
    assert edge.outbox.state().pending == 3  # the ultrasound, the CT, the manifest
    sent_us, sent_ct = sent[us_uid], sent[ct_uid]
    for region in edited.regions_of(us_uid):
        assert not sent_us.pixel_array[region.y:region.y1, region.x:region.x1].any(), region
    assert sent_us.BurnedInAnnotation == "NO"
    assert {BASIC_PROFILE, CLEAN_PIXEL_DATA} <= method_codes(sent_us)
    assert BASIC_PROFILE in method_codes(sent_ct) and CLEAN_PIXEL_DATA not in method_codes(sent_ct)
    assert np.array_equal(sent_ct.pixel_array, ct.pixel_array)  # not scanned, not changed
    assert CLEAN_PIXEL_DATA not in method_codes(sent[selection.manifest_uid])


def test_a_selection_in_which_no_text_is_found_is_released_automatically(tmp_path):
    ct = identified_ct()
    us = ultrasound(ct, scan())
    edge = edge_at(tmp_path)
    selection = from_pacs(edge, [ct, us])
    assert selection.state == "released", selection.note
    assert selection.note == "released automatically; no pixels changed (1 of 2 image(s) looked at)"
    us_uid, ct_uid = str(us.SOPInstanceUID), str(ct.SOPInstanceUID)
    assert selection.cleaning[us_uid].scanned and selection.cleaning[us_uid].changed_fraction == 0
    sent = released(edge, selection)
    assert CLEAN_PIXEL_DATA in method_codes(sent[us_uid])  # it went through cleaning, nothing was found
    assert CLEAN_PIXEL_DATA not in method_codes(sent[ct_uid])
    assert np.array_equal(sent[us_uid].pixel_array, us.pixel_array)


def sonosite(of: Dataset) -> Dataset:
    """A SonoSite Turbo 320x240 ultrasound: its template blanks the top 13 rows, where the
    patient's name is burned in; nothing else in the image is text."""
    pixels = burned_in(scan(), [((10, 0), "SMITH JOHN 9434765919")], 11)
    return ultrasound(of, pixels, Manufacturer="SonoSite", ManufacturerModelName="Turbo")


@pytest.mark.parametrize("allowed", [True, False], ids=["auto-release-on", "auto-release-off"])
def test_template_only_cleaning_leaves_without_a_person_only_where_the_site_allows_it(tmp_path, allowed):
    ct = identified_ct()
    us = sonosite(ct)
    us_uid = str(us.SOPInstanceUID)
    edge = edge_at(tmp_path, auto_release_template_cleaning=allowed)
    selection = from_pacs(edge, [ct, us])
    assert selection.regions_of(us_uid) and {r.source for r in selection.regions_of(us_uid)} <= {"template", "region"}
    if not allowed:
        assert selection.state == "review" and edge.outbox.state().pending == 0
        assert selection.note == "burned-in text found in 1 of 2 image(s): waiting for a person"
        return
    assert selection.state == "released"
    assert selection.note.startswith("released automatically; pixels blanked in 1 of 2 image(s)")
    sent = released(edge, selection)[us_uid]
    assert CLEAN_PIXEL_DATA in method_codes(sent)
    assert not sent.pixel_array[:13].any()  # the template's band
    assert np.array_equal(sent.pixel_array[13:], us.pixel_array[13:])


def test_text_read_in_the_image_waits_for_a_person_even_where_template_cleaning_may_leave_alone(tmp_path):
    ct = identified_ct()
    us = ultrasound(ct, burned_in(scan(), NAME_AND_NUMBER, 18))
    edge = edge_at(tmp_path, auto_release_template_cleaning=True)
    selection = from_pacs(edge, [ct, us])
    assert selection.state == "review" and edge.outbox.state().pending == 0


def test_uncertain_detection_waits_even_where_template_cleaning_may_leave_alone(tmp_path):
    ct = identified_ct()
    flat = ultrasound(ct, np.full((240, 320), 40, np.uint8), BurnedInAnnotation="YES")  # says text, none to find
    edge = edge_at(tmp_path, auto_release_template_cleaning=True)
    selection = from_pacs(edge, [flat])
    assert selection.state == "review" and edge.outbox.state().pending == 0
    assert selection.note == "detection uncertain in 1 of 1 image(s): waiting for a person"
    page = logged_in(edge).get(f"/selections/{selection.manifest_uid}").text
    assert "The search for burned-in text is uncertain in this image" in page


def test_a_cine_says_its_rectangles_are_blanked_in_every_frame(tmp_path):
    ct = identified_ct()
    cine = ultrasound(ct, burned_in(scan(), NAME_AND_NUMBER, 18), frames=3)
    edge = edge_at(tmp_path)
    selection = from_pacs(edge, [cine])
    assert selection.state == "review" and selection.cleaning[str(cine.SOPInstanceUID)].frames == 3
    page = logged_in(edge).get(f"/selections/{selection.manifest_uid}").text
    assert "of the image blanked, in all 3 frames" in page
    edge.manager.confirm(selection.manifest_uid, "Ann Jones (GMC 7000001)")
    sent = released(edge, selection)[str(cine.SOPInstanceUID)]
    for region in selection.regions_of(str(cine.SOPInstanceUID)):
        assert not sent.pixel_array[:, region.y:region.y1, region.x:region.x1].any(), region


def test_a_discarded_selection_sends_nothing(tmp_path):
    ct = identified_ct()
    us = ultrasound(ct, burned_in(scan(), NAME_AND_NUMBER, 18))
    edge = edge_at(tmp_path)
    selection = from_pacs(edge, [ct, us])
    client = logged_in(edge)
    url = f"/selections/{selection.manifest_uid}"
    assert client.post(f"{url}/discard", follow_redirects=False).status_code == 303
    assert edge.manager.get(selection.manifest_uid).state == "discarded"
    late = client.post(f"{url}/confirm", follow_redirects=False)  # a second tab confirms after the discard
    assert late.status_code == 303 and "error=" in late.headers["location"]
    assert edge.manager.get(selection.manifest_uid).state == "discarded"
    assert edge.outbox.state().pending == 0 and not list(edge.outbox.pending_folder.parent.glob("staging/*/*.dcm"))
    assert "Confirm and send" not in client.get(url).text


def test_a_selection_saved_before_the_cleaning_records_still_confirms_with_113101(tmp_path):
    """Selections waiting in review when the edge is upgraded have rectangles but no per-image
    record; their rectangles (with keys this version may not know) are used as they are."""
    ct = identified_ct()
    us = ultrasound(ct, burned_in(scan(), NAME_AND_NUMBER, 18))
    edge = edge_at(tmp_path)
    selection = from_pacs(edge, [ct, us])
    us_uid = str(us.SOPInstanceUID)
    old = edge.manager.get(selection.manifest_uid)
    old.cleaning = {}
    old.regions[us_uid] = [{**r, "confidence": 91} for r in old.regions[us_uid]]  # a key from another version
    edge.manager._save(old)
    edge.manager.confirm(selection.manifest_uid, "Ann Jones (GMC 7000001)")
    assert edge.manager.get(selection.manifest_uid).state == "released"
    sent = released(edge, selection)
    assert CLEAN_PIXEL_DATA in method_codes(sent[us_uid])
    assert CLEAN_PIXEL_DATA not in method_codes(sent[str(ct.SOPInstanceUID)])


@pytest.mark.browser
def test_in_chromium_the_preview_runs_under_the_csp_and_a_dragged_rectangle_is_added(tmp_path):
    """The page's script comes from /static (the CSP refuses inline ones): dragging across the
    before image fills the rectangle field, and updating adds the person's rectangle."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    ct = identified_ct()
    us = ultrasound(ct, burned_in(scan(), NAME_AND_NUMBER, 18))
    edge = edge_at(tmp_path)
    selection = from_pacs(edge, [ct, us])
    edge.users.add("ajones", display_name="Jones^Ann", gmc="7000001", password="pw")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_edge_app(edge), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None)
            page.goto(f"http://127.0.0.1:{port}/login?next=/selections/{selection.manifest_uid}")
            page.fill("input[name=username]", "ajones")
            page.fill("input[name=password]", "pw")
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            article = page.locator(f"article[id='image-{us.SOPInstanceUID}']")
            before = article.locator("img.pick-region").first
            assert before.evaluate("img => img.complete && img.naturalWidth") == 320
            box = before.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.625, box["y"] + box["height"] * 0.75)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.8125, box["y"] + box["height"] * 0.875)
            page.mouse.up()
            field = article.locator("input[name=add]").input_value()
            x, y, w, h = map(int, field.split(","))
            assert abs(x - 200) <= 2 and abs(y - 180) <= 2 and abs(w - 60) <= 2 and abs(h - 30) <= 2, field
            article.locator("button", has_text="Update rectangles").click()
            page.wait_for_load_state("networkidle")
            assert "Added by ajones" in page.content()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert problems == []
    added = edge.manager.get(selection.manifest_uid).regions_of(str(us.SOPInstanceUID))[-1]
    assert added.source == "user" and abs(added.x - 200) <= 2
    assert edge.outbox.state().pending == 0
