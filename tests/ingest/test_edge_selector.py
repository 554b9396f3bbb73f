"""The edge page as a TCE Export Selector: find a study in a real PACS (Orthanc, C-FIND), pick it,
fill the teaching-file form, preview, confirm, and see it arrive de-identified in the archive."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid
from sqlalchemy import func, select

from api.edge_app import create_edge_app
from archive import folders
from archive.models import Case, FolderKind, Instance, QuarantinedObject
from ingest.edge.outbox import Destination
from ingest.edge.service import Edge, EdgeConfig
from ingest.edge.users import EdgeUserError, EdgeUsers

from .. import dicom_data
from ..senders import register_ae
from ..peers import LiveServer, free_port, orthanc
from .test_edge import IDENTIFIERS, stored_count, wait_until
from ..csrf_client import BrowserLikeClient

pytestmark = pytest.mark.peers



@pytest.fixture(autouse=True)
def edge_is_registered(request):
    """The archive knows this edge: an export manager whose reports' authors it believes."""
    if "casebank" in request.fixturenames:
        register_ae(request.getfixturevalue("casebank"), "CASEBANK-EDGE", "edge", host="127.0.0.1")


def identified_study() -> list[Dataset]:
    """Three CT images and a screen capture with the patient's name and number burned in."""
    images = dicom_data.study(["CT_small.dcm"] * 3, description="CT abdomen")
    for ds in images:
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Smith^John", "9434765919", "19600101"
        ds.AccessionNumber, ds.InstitutionName = "ACC-778899", "St Elsewhere"
        ds.PatientIdentityRemoved = "NO"
        del ds.DeidentificationMethodCodeSequence
    canvas = Image.new("L", (320, 240), 20)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=18)
    draw.text((12, 10), "SMITH JOHN", fill=255, font=font)
    draw.text((12, 36), "9434765919", fill=255, font=font)
    draw.ellipse((110, 90, 230, 210), fill=140)
    capture = Dataset()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyInstanceUID", "StudyDate",
                    "StudyTime", "StudyDescription", "InstitutionName", "PatientIdentityRemoved"):
        if keyword in images[0]:
            setattr(capture, keyword, images[0].data_element(keyword).value)
    capture.SOPClassUID, capture.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    capture.SeriesInstanceUID, capture.SeriesNumber, capture.InstanceNumber = generate_uid(), 99, 1
    capture.Modality, capture.ConversionType, capture.SeriesDescription = "SC", "WSD", "Screen capture"
    capture.set_pixel_data(np.asarray(canvas), "MONOCHROME2", 8)
    capture.ensure_file_meta()
    return [*images, capture]


def log_in(client: TestClient, username: str, password: str) -> None:
    reply = client.post("/login", data={"username": username, "password": password, "next": "/"}, follow_redirects=False)
    assert reply.status_code == 303, reply.text


def test_a_study_chosen_on_the_edge_page_arrives_deidentified_in_the_chosen_folder(casebank, make_user, tmp_path):
    alice, admin = make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        shared = folders.create_folder(session, admin, "Abdomen", FolderKind.SHARED)
        folders.grant(session, admin, shared, alice, view=True, send=True)
    objects = identified_study()
    paths = dicom_data.write(objects, tmp_path / "pacs-files")
    edge_ae = "CASEBANK-EDGE"
    with LiveServer(casebank) as archive, orthanc({"edge": [edge_ae, "127.0.0.1", 1]}, tmp_path / "orthanc") as pacs:
        for path in paths:
            requests.post(f"{pacs}/instances", data=path.read_bytes(), timeout=10).raise_for_status()
        pacs_port = requests.get(f"{pacs}/system", timeout=10).json()["DicomPort"]
        edge = Edge(EdgeConfig(
            data=tmp_path / "edge", archive=Destination(archive.ae_title, "127.0.0.1", archive.dicom_port),
            host="127.0.0.1", port=free_port(), ae_title=edge_ae, pacs=Destination("ORTHANC", "127.0.0.1", pacs_port),
        ))
        password = edge.users.add("ajones", display_name="Jones^Ann", gmc=alice.gmc)
        edge.start()
        try:
            client = BrowserLikeClient(create_edge_app(edge))
            assert client.get("/", follow_redirects=False).status_code == 303  # the page needs a login
            log_in(client, "ajones", password)

            # find the patient's studies and open the one to send
            found = client.get("/studies", params={"patient_name": "smith"})
            assert found.status_code == 200 and "CT abdomen" in found.text
            study_link = re.search(r'href="(/studies/[0-9.]+)"', found.text).group(1)
            study_page = client.get(study_link)
            assert "Screen capture" in study_page.text and "Signed as Ann Jones, GMC " + alice.gmc in study_page.text
            action = re.search(r'<form method="post" action="([^"]+/export)"', study_page.text).group(1)
            capture_series = str(objects[-1].SeriesInstanceUID)
            assert f'class="pick-images" data-series="{capture_series}"' in study_page.text
            picked = client.get(f"{study_link}/series/{capture_series}/images").json()
            assert picked == [{"sop_uid": str(objects[-1].SOPInstanceUID), "number": "1"}]

            # click 1: nothing ticked sends the whole study; the history names the patient
            sent = client.post(action, data={
                "title": "Small bowel obstruction", "history": "Mr Smith, 9434765919, vomiting for two days",
                "findings": "Dilated small bowel loops", "diagnosis": "Adhesional obstruction",
                "keywords": "bowel, obstruction", "destination": "folder", "folder": "/Abdomen",
            }, follow_redirects=False)
            assert sent.status_code == 303, sent.text
            preview_url = sent.headers["location"]
            preview = client.get(preview_url)
            assert "Confirm and send" in preview.text
            assert "<del>Smith</del>" in preview.text and "<del>9434765919</del>" in preview.text  # shown, removed
            manifest_uid = preview_url.rsplit("/", 1)[1]
            selection = edge.manager.get(manifest_uid)
            assert selection.state == "review" and stored_count(casebank) == 0  # nothing leaves before confirming
            capture_uid = str(objects[-1].SOPInstanceUID)
            regions = selection.regions_of(capture_uid)
            assert regions and all(r.source == "ocr" for r in regions)
            assert {uid for uid in selection.regions} == {capture_uid}  # CT needs no pixel cleaning
            assert f"{preview_url}/images/{capture_uid}/before.png" in preview.text
            assert "of the image blanked" in preview.text
            before, after = (
                np.asarray(Image.open(io.BytesIO(client.get(f"{preview_url}/images/{capture_uid}/{side}.png").content)).convert("RGB"))
                for side in ("before", "after"))
            first = regions[0]
            assert tuple(before[first.y, first.x]) != (0, 0, 0)  # outlined in colour on the original
            assert tuple(after[first.y + first.height // 2, first.x + first.width // 2]) == (0, 0, 0)  # blanked as it leaves

            # the user adds a rectangle over the drawn disc and keeps the OCR ones
            edit = client.post(f"{preview_url}/images/{capture_uid}/regions",
                               data={"keep": [str(i) for i in range(len(regions))], "add": "140,120,40,40"},
                               follow_redirects=False)
            assert edit.status_code == 303
            assert edge.manager.get(manifest_uid).regions_of(capture_uid)[-1].source == "user"

            # click 2: confirm
            assert client.post(f"{preview_url}/confirm", follow_redirects=False).status_code == 303
            wait_until(lambda: stored_count(casebank) == 6, timeout=60, what="4 images, report and manifest")
            assert edge.manager.get(manifest_uid).state == "released"
            assert "confirmed by Ann Jones" in client.get("/").text
        finally:
            edge.stop()

    with casebank.database.session() as session:
        assert session.scalar(select(func.count(QuarantinedObject.id))) == 0  # the archive's door check is content
        case = session.scalars(select(Case)).one()
        assert case.folder.name == "Abdomen" and case.notice == "" and case.status.value == "complete"
        assert case.title == "Small bowel obstruction" and case.author_gmc == alice.gmc
        assert "Smith" not in case.history and "9434765919" not in case.history and "vomiting" in case.history
        blobs = {i.sop_class_uid: casebank.blobs.read(i.blob_sha256) for i in session.scalars(select(Instance))}
    for blob in blobs.values():
        for identifier in IDENTIFIERS:
            assert identifier not in blob
    capture = dcmread(io.BytesIO(blobs[SecondaryCaptureImageStorage]))
    assert capture.BurnedInAnnotation == "NO"
    assert "113101" in {str(c.CodeValue) for c in capture.DeidentificationMethodCodeSequence}  # the door files it
    ct = dcmread(io.BytesIO(blobs[objects[0].SOPClassUID]))  # the CTs were not scanned: no Clean Pixel Data
    assert "113101" not in {str(c.CodeValue) for c in ct.DeidentificationMethodCodeSequence}
    pixels = capture.pixel_array
    for region in [*regions, type(regions[0])(140, 120, 40, 40, "user")]:
        assert np.ptp(pixels[region.y:region.y1, region.x:region.x1]) == 0, region


def test_edge_pages_need_a_login_and_reject_a_wrong_password(tmp_path):
    edge = Edge(EdgeConfig(data=tmp_path / "edge", archive=Destination("ARCHIVE", "127.0.0.1", free_port())))
    edge.users.add("ajones", display_name="Jones^Ann", gmc="7000001", password="right-password")
    client = BrowserLikeClient(create_edge_app(edge))
    assert client.get("/api/edge/status").status_code == 401
    assert client.get("/studies?patient_id=1", follow_redirects=False).headers["location"].startswith("/login")
    wrong = client.post("/login", data={"username": "ajones", "password": "wrong"})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    log_in(client, "ajones", "right-password")
    assert client.get("/api/edge/status").status_code == 200


def test_edge_users_need_a_gmc_number_and_a_unique_name(tmp_path: Path):
    users = EdgeUsers(tmp_path / "users.json")
    users.add("ajones", display_name="Jones^Ann", gmc="7000001", password="pw")
    with pytest.raises(EdgeUserError, match="7 digits"):
        users.add("bsmith", display_name="Smith^Bo", gmc="12", password="pw")
    with pytest.raises(EdgeUserError, match="already exists"):
        users.add("ajones", display_name="Jones^Ann", gmc="7000001", password="pw")
    assert users.authenticate("ajones", "pw") is not None and users.authenticate("ajones", "nope") is None


def test_a_pacs_selection_whose_burned_in_text_is_uncertain_waits_for_a_person(tmp_path):
    """Burned In Annotation YES with no text to be found: never forwarded until someone confirms."""
    from ingest.tce.manifest import build_manifest

    [ct] = dicom_data.study(["CT_small.dcm"])
    ct.set_pixel_data(np.full((128, 128), 100, np.uint16), "MONOCHROME2", 12)  # flat: no text to find
    ct.BurnedInAnnotation = "YES"
    manifest = build_manifest([ct], description="teaching")
    edge = Edge(EdgeConfig(data=tmp_path / "edge", archive=Destination("ARCHIVE", "127.0.0.1", free_port())))
    for ds in (ct, manifest):
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        edge.manager.receive(buffer.getvalue(), ds)
    selection = edge.manager.get(str(manifest.SOPInstanceUID))
    assert selection.state == "review" and selection.note == "detection uncertain in 1 of 1 image(s): waiting for a person"
    assert selection.findings[str(ct.SOPInstanceUID)]["uncertain"] is True
    assert "Burned In Annotation is YES" in selection.findings[str(ct.SOPInstanceUID)]["reason"]
    assert edge.outbox.state().pending == 0
    edge.manager.confirm(selection.manifest_uid, "Ann Jones (GMC 7000001)")
    assert edge.manager.get(selection.manifest_uid).state == "released"
    assert edge.outbox.state().pending == 2
    [sent] = [ds for ds in map(dcmread, edge.outbox.pending_folder.glob("*.dcm")) if ds.Modality == "CT"]
    assert "113101" in {str(c.CodeValue) for c in sent.DeidentificationMethodCodeSequence}  # it went through cleaning


def test_an_unreachable_pacs_is_shown_on_the_page_not_as_a_traceback(tmp_path):
    """Nothing listens on the PACS port: the page says which PACS and why, with status 502."""
    pacs = Destination("ORTHANC", "127.0.0.1", free_port())
    edge = Edge(EdgeConfig(data=tmp_path / "edge", archive=Destination("ARCHIVE", "127.0.0.1", free_port()), pacs=pacs))
    edge.users.add("ajones", display_name="Jones^Ann", gmc="7000001", password="pw")
    client = BrowserLikeClient(create_edge_app(edge))
    log_in(client, "ajones", "pw")
    for url in ("/studies?patient_id=123", "/studies/1.2.3"):
        answer = client.get(url)
        assert answer.status_code == 502, url
        assert f"the PACS ORTHANC@127.0.0.1:{pacs.port} did not accept an association" in answer.text
    sent = client.post("/studies/1.2.3/export", data={"title": "Anything"})
    assert sent.status_code == 502 and "did not accept an association for C-GET" in sent.text
