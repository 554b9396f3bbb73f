"""Forwarding a case from archive A to archive B: two real Casebank instances, each with its own
settings, data folder and database, talking DICOM C-STORE and DICOMweb STOW-RS over real sockets.

The case arrives in A as a TCE export over DICOM; an editor adds ATFI extras, keywords, a saved
window and crop, a histology picture and a PDF; A rebuilds the submission (export.tce_builder),
checks it at its door and queues it in the destination's outbox; B files it as from any TCE
sender and its search finds it."""

from __future__ import annotations

import io
import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from sqlalchemy import func, select

from api.app import create_app
from api.runtime import Casebank
from api.settings import Settings
from archive import case_extras, folders, forwarding, users
from archive.models import AuditEvent, Case, CaseStatus, Folder, FolderKind, Instance, Project, ProjectMember, ProjectRole, User
from export.tce_builder import build_case_export, encode
from ingest.deid_check import reasons_to_quarantine

from ..conftest import login, password_of
from ..csrf_client import BrowserLikeClient
from ..peers import LiveServer, create_database, free_port
from ..search.test_archive_search import teaching_case
from ..senders import register_ae
from .test_tce_receiver import send

pytestmark = pytest.mark.peers

_numbers = itertools.count(1)
AUTHOR_GMC = "7000001"
EXTRAS = {"category": "Pulmonary", "level": "Advanced", "organ_system": "Respiratory", "pathology": "Neoplasm",
          "anatomy": "Right upper lobe", "modality": "CT", "diagnosis_confirmed": "yes",
          "affiliation": "St Elsewhere Radiology", "contact": "ann.jones@elsewhere.example"}
WINDOW, CROP = (-600.0, 1500.0), {"x": 8.0, "y": 12.0, "width": 48.0, "height": 40.0}


@pytest.fixture
def archive_b_url(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> str:
    """B's own database, of the same kind as A's."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'b.sqlite3'}"
    return create_database(request.getfixturevalue("postgres_server"), f"casebank_b_{next(_numbers)}")


@pytest.fixture
def archive_b(tmp_path: Path, archive_b_url: str):  # type: ignore[no-untyped-def]
    settings = Settings(data=tmp_path / "b-data", database_url=archive_b_url, dicom_port=free_port(),
                        secret_key="test-secret-b", ae_title="CASEBANK_B")
    cb = Casebank.open(settings)
    with cb.database.session() as session:
        users.add_user(session, "alice", email="alice@b.example", gmc=AUTHOR_GMC, display_name="Dr Alice",
                       password=password_of("alice"))
    register_ae(cb, "CASEBANK", "edge", host="127.0.0.1")  # A's calling AE: an export manager, authors believed
    yield cb
    cb.close()


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _pdf() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (255, 255, 255)).save(buffer, "PDF")
    return buffer.getvalue()


def prepared_case(casebank: Casebank, make_user) -> tuple[int, User]:  # type: ignore[no-untyped-def]
    """A case filed in A from a TCE export, then edited as an editor would."""
    alice = make_user("alice")
    with LiveServer(casebank) as live:
        statuses = send(live, teaching_case("Hepatocellular carcinoma", "HCC in cirrhosis", gmc=AUTHOR_GMC,
                                            codes=[("I10", "C22.0", "Liver cell carcinoma")]))
        assert [s.Status for s in statuses] == [0, 0, 0]
    with casebank.database.session() as session:
        case = session.scalars(select(Case)).one()
        user = session.get_one(User, alice.id)
        case.keywords = ["liver", "arterial enhancement"]
        case.teaching_extra = dict(EXTRAS)
        case.discussion = "Washout on the portal venous phase"
        [ct] = [s for s in case.studies[0].series if s.modality == "CT"]
        ct.default_window_center, ct.default_window_width = WINDOW
        ct.default_crop = dict(CROP)
        case_extras.add_attachment(session, casebank.blobs, user, case.id, "histology.png", "image/png",
                                   _png((180, 20, 90)))
        case_extras.add_attachment(session, casebank.blobs, user, case.id, "paper.pdf", "application/pdf", _pdf())
        return case.id, alice


def _wait(predicate, timeout: float = 60.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _complete_case(cb: Casebank) -> Case | None:
    with cb.database.session() as session:
        return session.scalars(select(Case).where(Case.status == CaseStatus.COMPLETE)).first()


def _instance_count(cb: Casebank) -> int:
    with cb.database.session() as session:
        return session.scalar(select(func.count()).select_from(Instance)) or 0


def assert_case_arrived_whole(a: Casebank, b: Casebank, case_id: int) -> None:
    with a.database.session() as sa, b.database.session() as sb:
        original = sa.get_one(Case, case_id)
        [arrived] = sb.scalars(select(Case)).all()
        assert arrived.status == CaseStatus.COMPLETE, arrived.notice
        for name in ("title", "history", "findings", "diagnosis", "differential", "discussion", "author_gmc"):
            assert getattr(arrived, name) == getattr(original, name), name
        assert arrived.author_name == original.author_name == "Dr Ann Jones"
        assert arrived.keywords == original.keywords
        assert [(c.system, c.code, c.display) for c in arrived.codes] == [("I10", "C22.0", "Liver cell carcinoma")]
        assert arrived.teaching_extra == EXTRAS
        alice = sb.scalar(select(User).where(User.username == "alice"))
        assert arrived.folder_id == folders.personal_folder(sb, alice).id  # the believed author's folder
        [ct_a] = [s for s in original.studies[0].series if s.modality == "CT"]
        [ct_b] = [s for st in arrived.studies for s in st.series if s.series_instance_uid == ct_a.series_instance_uid]
        assert (ct_b.default_window_center, ct_b.default_window_width) == WINDOW
        assert ct_b.default_crop == CROP
        assert [i.blob_sha256 for i in ct_b.instances] == [i.blob_sha256 for i in ct_a.instances]  # the same bytes
        attachments = {s.description: s for st in arrived.studies for s in st.series if s.modality == "OT"}
        assert set(attachments) == {"Attachment: histology.png", "Attachment: paper.pdf"}
        picture = dcmread(io.BytesIO(b.blobs.read(attachments["Attachment: histology.png"].instances[0].blob_sha256)))
        assert (picture.pixel_array == np.array([180, 20, 90], dtype=np.uint8)).all()
        page = dcmread(io.BytesIO(b.blobs.read(attachments["Attachment: paper.pdf"].instances[0].blob_sha256)))
        assert page.pixel_array.shape[2] == 3 and page.Rows > 50


def assert_b_finds_it(b: Casebank) -> None:
    with BrowserLikeClient(create_app(b)) as client:
        login(client, "alice")
        _wait(lambda: b.indexer.catch_up() >= 0 and b.indexer.pending() == 0, what="B's search index")
        assert client.get("/api/search", params={"q": "carcinoma"}).json()["total"] == 1
        assert client.get("/api/search", params={"q": "arterial enhancement"}).json()["total"] == 1
        found = client.get("/api/search", params={"filter": "modality:CT", "facet": "modality"}).json()
        assert found["total"] == 1
        assert {f["value"]: f["count"] for f in found["facets"]["modality"]}["CT"] == 1
        assert client.get("/api/search", params={"filter": "code:I10|C22.0"}).json()["total"] == 1


@pytest.mark.parametrize("kind", ["dicom", "stowrs"])
def test_a_forwarded_case_arrives_in_b_with_everything(casebank, make_user, archive_b, kind):
    case_id, _ = prepared_case(casebank, make_user)
    with LiveServer(archive_b) as live_b:
        with casebank.database.session() as session:
            if kind == "dicom":
                forwarding.add_destination(session, "cli", "b", dicom=f"{live_b.ae_title}@127.0.0.1:{live_b.dicom_port}")
            else:
                with archive_b.database.session() as sb:
                    token = users.issue_token(sb, sb.scalar(select(User).where(User.username == "alice")))
                forwarding.add_destination(session, "cli", "b", stow_url=f"{live_b.url}/dicomweb", token=token)
        casebank.start_forwarding()  # as `casebank serve` does
        with BrowserLikeClient(create_app(casebank)) as client:
            login(client, "alice")
            assert client.get("/api/destinations").json() == [{"name": "b"}]
            answer = client.post(f"/api/cases/{case_id}/forward", json={"destination": "b"})
            assert answer.status_code == 202, answer.text
            queued = answer.json()["queued"]
            whats = [q["what"] for q in queued]
            assert whats[-3:] == ["saved display", "teaching file report", "manifest"]
            _wait(lambda: _complete_case(archive_b) is not None, what="the case in B")
            _wait(lambda: _instance_count(archive_b) == len(queued), what="every object in B")
        assert_case_arrived_whole(casebank, archive_b, case_id)
        assert_b_finds_it(archive_b)
        with casebank.database.session() as session:
            state = casebank.forwarder.state(forwarding.get_destination(session, "b"))
            assert (state.waiting, state.sent, state.refused) == (0, len(queued), 0)
            assert {o.state for o in state.forwards[0].objects} == {"sent"}
            events = session.scalars(select(AuditEvent).where(AuditEvent.action == "case.forwarded")).all()
            assert [(e.object_id, e.detail["destination"]) for e in events] == [(str(case_id), "b")]


def test_b_down_during_the_forward_gets_everything_once_after_restarts(casebank, settings, make_user, archive_b):
    case_id, _ = prepared_case(casebank, make_user)
    live_b = LiveServer(archive_b)  # not started: B is down
    with casebank.database.session() as session:
        destination = forwarding.add_destination(session, "cli", "b", dicom=f"{live_b.ae_title}@127.0.0.1:{live_b.dicom_port}")
        alice = session.scalar(select(User).where(User.username == "alice"))
        queued = forwarding.forward_case(session, casebank.blobs, alice, case_id, "b", forwarder=casebank.forwarder)
    casebank.start_forwarding()
    with casebank.database.session() as session:
        destination = forwarding.get_destination(session, "b")
        _wait(lambda: casebank.forwarder.state(destination).last_error != "", what="a failed attempt")
        assert casebank.forwarder.state(destination).waiting == len(queued)
    casebank.close()  # A restarts too, with everything still waiting
    pending = list((settings.data / "outbox" / "b" / "pending").glob("*.dcm"))
    assert len(pending) == len(queued)

    with Casebank.open(settings) as a_again, live_b:
        a_again.start_forwarding()  # the restart resumes the queue
        _wait(lambda: _complete_case(archive_b) is not None, what="the case in B")
        _wait(lambda: _instance_count(archive_b) == len(queued), what="every object in B")
        with a_again.database.session() as session:
            destination = forwarding.get_destination(session, "b")
            _wait(lambda: a_again.forwarder.state(destination).waiting == 0, what="an empty outbox")
            assert a_again.forwarder.state(destination).sent == len(queued)
        assert_case_arrived_whole(a_again, archive_b, case_id)
    time.sleep(0.5)
    assert _instance_count(archive_b) == len(queued)  # once: nothing doubled
    with archive_b.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1


def test_rights_research_cases_and_the_door_check(casebank, make_user):
    case_id, alice = prepared_case(casebank, make_user)
    make_user("bob"), make_user("root", admin=True)
    carol = make_user("carol")
    with casebank.database.session() as session:
        forwarding.add_destination(session, "cli", "b", dicom="ELSEWHERE@127.0.0.1:1")
        home = folders.personal_folder(session, session.get_one(User, alice.id))
        folders.grant(session, session.get_one(User, alice.id), home, session.get_one(User, carol.id), view=True)
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "bob")  # may not see the case
        assert client.post(f"/api/cases/{case_id}/forward", json={"destination": "b"}).status_code == 404
        assert client.get("/api/outbox").status_code == 404
        login(client, "carol")  # may view, not edit
        assert client.post(f"/api/cases/{case_id}/forward", json={"destination": "b"}).status_code == 403
        assert f'action="/cases/{case_id}/forward"' not in client.get(f"/cases/{case_id}").text
        login(client, "alice")
        page = client.get(f"/cases/{case_id}").text
        assert f'action="/cases/{case_id}/forward"' in page and "<option>b</option>" in page
        assert client.post(f"/api/cases/{case_id}/forward", json={"destination": "nowhere"}).status_code == 404
        form = client.post(f"/cases/{case_id}/forward", data={"destination": "b"}, follow_redirects=False)
        assert form.status_code == 303
        login(client, "root")
        [state] = client.get("/api/outbox").json()
        assert state["name"] == "b" and {o["state"] for o in state["forwards"][0]["objects"]} == {"waiting"}
        assert "case " + str(case_id) in client.get("/admin/outbox").text
        assert client.get("/api/destinations").json()[0]["target"] == "ELSEWHERE@127.0.0.1:1"

    with casebank.database.session() as session:  # the case moves into a research project's collection
        project = Project(name="trial", protocol_id="P-1")
        session.add(project)
        session.flush()
        session.add(ProjectMember(project_id=project.id, user_id=alice.id, role=ProjectRole.PRINCIPAL_INVESTIGATOR))
        collection = Folder(name="trial", kind=FolderKind.PROJECT, project_id=project.id)
        session.add(collection)
        session.flush()
        session.get_one(Case, case_id).folder_id = collection.id
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "alice")
        refused = client.post(f"/api/cases/{case_id}/forward", json={"destination": "b"})
        assert refused.status_code == 403 and "research project" in refused.json()["detail"]


def test_strip_sender_leaves_no_author_in_any_byte(casebank, make_user):
    case_id, alice = prepared_case(casebank, make_user)
    with casebank.database.session() as session:
        case = session.get_one(Case, case_id)
        kept = b"".join(encode(ds) for ds in build_case_export(session, casebank.blobs, case))
        assert b"Jones" in kept and AUTHOR_GMC.encode() in kept  # without stripping the author travels
        stripped_objects = build_case_export(session, casebank.blobs, case, strip_sender=True)
        assert all(reasons_to_quarantine(ds) == [] for ds in stripped_objects)
        forwarding.add_destination(session, "cli", "public", dicom="ELSEWHERE@127.0.0.1:1")
        forwarding.forward_case(session, casebank.blobs, session.get_one(User, alice.id), case_id, "public",
                                strip_sender=True, forwarder=casebank.forwarder)
    queued = b"".join(p.read_bytes() for p in (casebank.settings.data / "outbox" / "public" / "pending").glob("*.dcm"))
    assert queued
    for needle in (b"Jones", b"Ann", AUTHOR_GMC.encode(), b"Elsewhere", b"ann.jones"):
        assert needle not in queued, needle


def test_an_object_failing_the_door_check_refuses_the_whole_forward(casebank, make_user):
    case_id, alice = prepared_case(casebank, make_user)
    with casebank.database.session() as session:
        forwarding.add_destination(session, "cli", "b", dicom="ELSEWHERE@127.0.0.1:1")
        case = session.get_one(Case, case_id)
        case.findings = "NHS number 943 476 5919 in the text"  # identifiable: the report may not leave
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "alice")
        answer = client.post(f"/api/cases/{case_id}/forward", json={"destination": "b"})
        assert answer.status_code == 422 and "de-identification check" in answer.json()["detail"]
    assert not list((casebank.settings.data / "outbox" / "b").glob("pending/*.dcm"))
