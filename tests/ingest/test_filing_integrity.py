"""Attacks on the write path, through real peers: what arrives over the network is a claim.

Alice's case is the victim in each test. Mallory (an account of her own, with her own bound AE),
Bob (view right on Alice's folder), Carol (no right at all) and unregistered AEs try to move,
retitle, merge, add to or sign as Alice's case, over DICOM (pynetdicom, dcmtk storescu) and STOW-RS
(dicomweb-client). Each test checks that the attack was contained and that the victim's case is
unchanged: its rows, its stored bytes and what search finds.
"""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
from datetime import timedelta

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid
from sqlalchemy import select

from archive import folders, users
from archive.copying import copy_case
from archive.errors import NotPermitted
from archive.models import AuditEvent, Case, FolderKind, utcnow
from archive.submissions import sweep

from .. import dicom_data
from ..senders import register_ae
from .test_tce_receiver import export, send, teaching

STORESCU = "/usr/bin/storescu"  # dcmtk's, not pynetdicom's console script of the same name

pytestmark = pytest.mark.peers


def case_state(casebank, case_id: int) -> dict:
    """Everything a user sees of a case, including the bytes of each stored object."""
    with casebank.database.session() as session:
        case = session.get(Case, case_id)
        assert case is not None, f"case {case_id} is gone"
        return {
            "folder": case.folder_id, "title": case.title, "history": case.history, "findings": case.findings,
            "diagnosis": case.diagnosis, "discussion": case.discussion, "keywords": list(case.keywords),
            "author": (case.author_name, case.author_gmc), "status": case.status, "notice": case.notice,
            "codes": [(c.system, c.code) for c in case.codes],
            "objects": sorted(
                (st.study_instance_uid, se.series_instance_uid, i.sop_instance_uid,
                 hashlib.sha256(casebank.blobs.read(i.blob_sha256)).hexdigest())
                for st in case.studies for se in st.series for i in se.instances
            ),
        }


def search_titles(live, username: str, q: str) -> list[tuple[str, str]]:
    with live.casebank.database.session() as session:
        token = users.issue_token(session, users.get_user(session, username))
    response = requests.get(f"{live.url}/api/search", params={"q": q},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    return [(hit["title"], hit["folder"]["path"]) for hit in response.json()["hits"]]


def stow_client(live, username: str) -> DICOMwebClient:
    session = requests.Session()
    with live.casebank.database.session() as db:
        session.headers["Authorization"] = f"Bearer {users.issue_token(db, users.get_user(db, username))}"
    return DICOMwebClient(url=f"{live.url}/dicomweb", session=session)


def cases_in(casebank, path: str) -> list[Case]:
    with casebank.database.session() as session:
        folder = folders.folder_by_path(session, path)
        return list(session.scalars(select(Case).where(Case.folder_id == folder.id).order_by(Case.id)))


@pytest.fixture
def victim(casebank, live, make_user):
    """Alice's complete teaching case, sent from her own bound AE; Mallory and her AE exist too."""
    alice, mallory = make_user("alice"), make_user("mallory")  # GMC 7000001, 7000002
    with casebank.database.session() as session:
        users.bind_ae(session, "ALICEPACS", session.merge(alice))
        users.bind_ae(session, "MALLORYPC", session.merge(mallory))
    images, report, manifest = export()
    assert [r.Status for r in send(live, [*images, report, manifest], calling_ae="ALICEPACS", trusted=False)] == [0] * 5
    [case] = cases_in(casebank, "/alice")
    before = case_state(casebank, case.id)
    assert before["title"] == "Pneumatosis intestinalis in an adult" and before["status"].value == "complete"
    return {"case_id": case.id, "before": before, "images": images, "report": report, "manifest": manifest}


def assert_untouched(casebank, live, victim) -> None:
    assert case_state(casebank, victim["case_id"]) == victim["before"]
    assert search_titles(live, "alice", "pneumatosis") == [("Pneumatosis intestinalis in an adult", "/alice")]


def attacker_objects(study_uid: str, title: str, gmc: str = "7000002", extra_references=()):
    """A TCE export of new images that claims `study_uid`, signed by `gmc`."""
    images = dicom_data.study(["CT_small.dcm"], description="Attack")
    for ds in images:
        ds.StudyInstanceUID = study_uid
    report, manifest = dicom_data.tce_export([*images, *extra_references], teaching(gmc=gmc, abstract=title))
    report.StudyInstanceUID = manifest.StudyInstanceUID = study_uid
    return images, report, manifest


def test_a_report_and_manifest_reusing_the_victims_study_uid_neither_move_nor_retitle_it(casebank, live, victim):
    study_uid = str(victim["images"][0].StudyInstanceUID)
    images, report, manifest = attacker_objects(study_uid, "Taken over")
    statuses = [r.Status for r in send(live, [report, manifest, *images], calling_ae="MALLORYPC", trusted=False)]
    assert statuses == [0, 0, 0]  # accepted, as Mallory's own

    assert_untouched(casebank, live, victim)
    [theirs] = cases_in(casebank, "/mallory")
    assert theirs.id != victim["case_id"] and theirs.title == "Taken over"
    assert search_titles(live, "alice", "taken") == []
    with casebank.database.session() as session:  # an admin can see whose UID was reused
        reused = session.scalars(select(AuditEvent).where(AuditEvent.action == "study.uid_reused")).all()
        assert reused and victim["case_id"] in reused[0].detail["cases"]


def test_a_report_reusing_the_victims_report_uid_does_not_replace_its_text(casebank, live, victim):
    report = victim["report"]
    forged = dicom_data.tce_export(victim["images"], teaching(abstract="Rewritten"))[0]
    forged.SOPInstanceUID = report.SOPInstanceUID
    forged.file_meta.MediaStorageSOPInstanceUID = report.SOPInstanceUID
    forged.StudyInstanceUID, forged.SeriesInstanceUID = report.StudyInstanceUID, report.SeriesInstanceUID
    assert send(live, [forged, victim["manifest"]], calling_ae="MALLORYPC", trusted=False)[0].Status == 0
    assert_untouched(casebank, live, victim)


def test_a_manifest_naming_the_victims_instances_does_not_gather_them(casebank, live, victim):
    stolen = victim["images"][0]
    own_study = generate_uid()
    reference = copy.deepcopy(stolen)  # named under the attacker's own study, as one KOS can only hold one
    reference.StudyInstanceUID = own_study
    images, report, manifest = attacker_objects(own_study, "My own case", extra_references=[reference])
    send(live, [*images, report, manifest], calling_ae="MALLORYPC", trusted=False)
    with casebank.database.session() as session:
        sweep(session, utcnow() + timedelta(hours=1), timedelta(seconds=600))
    assert_untouched(casebank, live, victim)
    [theirs] = [c for c in cases_in(casebank, "/mallory") if c.title == "My own case"]
    assert theirs.status.value == "incomplete" and theirs.missing == [str(stolen.SOPInstanceUID)]

    send(live, [stolen], calling_ae="MALLORYPC", trusted=False)  # even sending the victim's object itself
    assert_untouched(casebank, live, victim)
    state = case_state(casebank, theirs.id)
    assert state["status"].value == "complete"  # its own copy of the named object arrived, filed apart
    assert {o[0] for o in state["objects"]} == {own_study, str(stolen.StudyInstanceUID)}


@pytest.mark.parametrize("intruder", ["bob", "carol"])
def test_stow_by_a_user_without_send_right_files_apart(casebank, live, victim, make_user, intruder):
    bob, _carol = make_user("bob"), make_user("carol")
    with casebank.database.session() as session:
        alice = users.get_user(session, "alice")
        folders.grant(session, alice, folders.personal_folder(session, alice), session.merge(bob), view=True)
    [extra] = dicom_data.study(["MR_small.dcm"])
    extra.StudyInstanceUID = victim["images"][0].StudyInstanceUID
    extra.SeriesInstanceUID = victim["images"][0].SeriesInstanceUID  # even the series UID
    stow_client(live, intruder).store_instances([extra])

    assert_untouched(casebank, live, victim)
    [theirs] = cases_in(casebank, f"/{intruder}")
    assert [o[2] for o in case_state(casebank, theirs.id)["objects"]] == [str(extra.SOPInstanceUID)]


def test_storescu_from_an_unbound_ae_reusing_the_study_uid_files_into_the_admin_inbox(casebank, live, victim, tmp_path):
    [extra] = dicom_data.study(["MR_small.dcm"])
    extra.StudyInstanceUID = victim["images"][0].StudyInstanceUID
    [path] = dicom_data.write([extra], tmp_path / "extra")
    done = subprocess.run(
        [STORESCU, "-aet", "STRANGER", "-aec", live.ae_title, "127.0.0.1", str(live.dicom_port), str(path)],
        capture_output=True, text=True, env={**os.environ, "TCP_NODELAY": "1"}, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert_untouched(casebank, live, victim)
    [held] = cases_in(casebank, "/Unclaimed")
    assert [o[2] for o in case_state(casebank, held.id)["objects"]] == [str(extra.SOPInstanceUID)]


def test_a_sender_with_the_send_right_adds_a_series_to_a_shared_case(casebank, live, make_user):
    alice, bob, root = make_user("alice"), make_user("bob"), make_user("root", admin=True)
    with casebank.database.session() as session:
        shared = folders.create_folder(session, root, "Teaching", FolderKind.SHARED)
        folders.grant(session, root, shared, session.merge(alice), send=True)
        folders.grant(session, root, shared, session.merge(bob), send=True)
    register_ae(casebank, "EDGE1", "edge", host="127.0.0.1")
    images, report, manifest = export(description="folder: /Teaching")
    send(live, [*images, report, manifest], calling_ae="EDGE1", trusted=False)
    [case] = cases_in(casebank, "/Teaching")
    [extra] = dicom_data.study(["MR_small.dcm"])
    extra.StudyInstanceUID = images[0].StudyInstanceUID
    stow_client(live, "bob").store_instances([extra])
    assert str(extra.SOPInstanceUID) in {o[2] for o in case_state(casebank, case.id)["objects"]}
    assert cases_in(casebank, "/bob") == []


def test_an_author_claimed_by_an_unregistered_ae_is_kept_as_text_only(casebank, live, make_user):
    make_user("alice")  # GMC 7000001: the forged author
    images, report, manifest = export()
    send(live, [*images, report, manifest], calling_ae="FORGER", trusted=False)
    assert cases_in(casebank, "/alice") == []
    [held] = cases_in(casebank, "/Unclaimed")
    assert (held.author_name, held.author_gmc) == ("", "")
    assert held.teaching_extra["claimed_author"] == "Dr Ann Jones (GMC 7000001)"
    assert "not come from a registered export manager" in held.notice


def test_an_author_claimed_through_a_users_own_ae_files_under_that_user(casebank, live, make_user):
    make_user("alice"), make_user("mallory")
    with casebank.database.session() as session:
        users.bind_ae(session, "MALLORYPC", users.get_user(session, "mallory"))
    images, report, manifest = export(teaching(gmc="7000001"))  # signed as Alice
    send(live, [*images, report, manifest], calling_ae="MALLORYPC", trusted=False)
    assert cases_in(casebank, "/alice") == []
    [case] = cases_in(casebank, "/mallory")
    assert case.author_name == "Dr Mallory" and case.author_gmc == "7000002"
    assert case.teaching_extra["claimed_author"] == "Dr Ann Jones (GMC 7000001)"


def test_the_rcr_author_form_from_a_registered_edge_reaches_the_authors_folder(casebank, live):
    with casebank.database.session() as session:
        users.add_user(session, "jane", email="jane@nhs.example", gmc="7123456", display_name="Dr Jane Smith",
                       password="a long enough passphrase 7123456")
    register_ae(casebank, "EDGE1", "edge", host="127.0.0.1")
    images, report, manifest = export(teaching(gmc="GMC7123456", author_name="Smith^Jane"))
    author = report.ContentSequence[0]
    assert author.TextValue == "Smith^Jane^^^GMC7123456"  # exactly as the RCR template writes it
    send(live, [*images, report, manifest], calling_ae="EDGE1", trusted=False)
    [case] = cases_in(casebank, "/jane")
    assert case.author_gmc == "7123456" and case.notice == ""


def test_a_registered_edge_title_used_from_another_host_is_not_trusted(casebank, live):
    with casebank.database.session() as session:
        users.add_user(session, "jane", email="jane@nhs.example", gmc="7123456",
                       password="a long enough passphrase 7123456")
    register_ae(casebank, "EDGE1", "edge", host="192.0.2.10")  # the real edge; we connect from 127.0.0.1
    images, report, manifest = export(teaching(gmc="7123456"))
    send(live, [*images, report, manifest], calling_ae="EDGE1", trusted=False)
    assert cases_in(casebank, "/jane") == []
    [held] = cases_in(casebank, "/Unclaimed")
    assert held.teaching_extra["claimed_author"].endswith("(GMC 7123456)")


def test_a_view_only_grantee_cannot_copy_a_case(casebank, victim, make_user):
    bob = make_user("bob")
    with casebank.database.session() as session:
        alice = users.get_user(session, "alice")
        folders.grant(session, alice, folders.personal_folder(session, alice), session.merge(bob), view=True)
    with casebank.database.session() as session:
        bob = users.get_user(session, "bob")
        with pytest.raises(NotPermitted):
            copy_case(session, casebank.blobs, bob, victim["case_id"], folders.personal_folder(session, bob).id)
    assert cases_in(casebank, "/bob") == []
    assert case_state(casebank, victim["case_id"]) == victim["before"]


def test_a_called_ae_bound_to_a_folder_still_needs_the_send_right(casebank, live, make_user):
    mallory, root = make_user("mallory"), make_user("root", admin=True)
    with casebank.database.session() as session:
        exam = folders.create_folder(session, root, "Exam", FolderKind.EXAM)
        users.bind_called_ae(session, "EXAM", exam)
        users.bind_ae(session, "MALLORYPC", session.merge(mallory))
    send(live, dicom_data.study(["CT_small.dcm"]), calling_ae="MALLORYPC", called_ae="EXAM", trusted=False)
    assert cases_in(casebank, "/Exam") == []
    assert len(cases_in(casebank, "/mallory")) == 1


def test_a_sub_folder_inherits_its_parents_list_of_allowed_senders(casebank, live, make_user):
    alice, root = make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        ldm = folders.create_folder(session, root, "LDM", FolderKind.LDM)
        folders.create_folder(session, root, "Chest", FolderKind.LDM, parent=ldm)
        folders.grant(session, root, ldm, session.merge(alice), send=True)
        folders.restrict_senders(session, root, ldm, gmc_numbers=["9999999"], calling_aes=[])
    images, report, manifest = export(description="folder: /LDM/Chest")
    send(live, [*images, report, manifest])  # signed by Alice (7000001), who is not on the list
    assert cases_in(casebank, "/LDM/Chest") == []
    [case] = cases_in(casebank, "/alice")
    assert "listed senders" in case.notice
