"""The archive as IHE TCE Receiver: manifests, teaching text, routing, quarantine and limits."""

from __future__ import annotations

import random
from datetime import timedelta

from pynetdicom import AE, StoragePresentationContexts, build_context
from sqlalchemy import func, select

from archive import folders, users
from archive.models import (
    Case,
    FolderKind,
    Instance,
    InstanceConflict,
    QuarantinedObject,
    utcnow,
)
from archive.submissions import sweep
from ingest.tce.atfi import TeachingFileInfo

from .. import dicom_data
from ..conftest import login
from ..senders import register_ae

KOS_AND_SR = [
    build_context("1.2.840.10008.5.1.4.1.1.88.59"),
    build_context("1.2.840.10008.5.1.4.1.1.88.22"),
    build_context("1.2.840.10008.5.1.4.1.1.88.33"),
    build_context("1.2.840.10008.5.1.4.1.1.88.11"),
]


def teaching(gmc: str = "7000001", **overrides) -> TeachingFileInfo:
    fields = dict(
        author_name="Jones^Ann^^Dr", author_gmc=gmc, affiliation="St Elsewhere", contact="ann@nhs.example",
        abstract="Pneumatosis intestinalis in an adult", keywords=("pneumatosis", "bowel ischaemia"),
        history="Abdominal pain and distension", findings="Intramural gas in the small bowel",
        discussion="Benign and life-threatening causes must be separated",
        differential="Ischaemia; pseudopneumatosis", diagnosis="Pneumatosis intestinalis",
        diagnosis_confirmed=True, organ_system="Gastrointestinal", pathology="Ischaemia",
        category="Gastrointestinal", level="Intermediate",
    )
    fields.update(overrides)
    return TeachingFileInfo(**fields)


def export(info: TeachingFileInfo | None = None, description: str = ""):
    images = dicom_data.study(["CT_small.dcm", "CT_small.dcm", "MR_small.dcm"], description="CT abdomen")
    report, manifest = dicom_data.tce_export(images, info or teaching(), description=description)
    return images, report, manifest


def send(live, datasets, calling_ae="PACS1", called_ae=None, *, trusted=True):
    """C-STORE `datasets` from `calling_ae`; a trusted PACS (registered, from this host) by
    default, whose reports' authors the archive believes. `trusted=False` sends as whatever the
    AE registry already says of `calling_ae` (an unregistered AE unless a test registered it)."""
    if trusted:
        register_ae(live.casebank, calling_ae, "pacs", host="127.0.0.1")
    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = [*StoragePresentationContexts[:100], *KOS_AND_SR]
    assoc = ae.associate("127.0.0.1", live.dicom_port, ae_title=called_ae or live.ae_title)
    assert assoc.is_established
    try:
        return [assoc.send_c_store(ds) for ds in datasets]
    finally:
        assoc.release()


def the_case(casebank) -> Case:
    with casebank.database.session() as session:
        return session.scalars(select(Case)).one()


def case_json(client, casebank, user="alice"):
    login(client, user)
    return client.get(f"/api/cases/{the_case(casebank).id}").json()


def assert_full_teaching_text(case: dict) -> None:
    assert case["title"] == "Pneumatosis intestinalis in an adult"
    assert case["history"] == "Abdominal pain and distension"
    assert case["findings"] == "Intramural gas in the small bowel"
    assert case["differential"] == "Ischaemia; pseudopneumatosis"
    assert case["diagnosis"] == "Pneumatosis intestinalis"
    assert case["discussion"] == "Benign and life-threatening causes must be separated"
    assert case["keywords"] == ["pneumatosis", "bowel ischaemia"]
    assert case["author"] == {"name": "Dr Ann Jones", "gmc": "7000001"}
    assert case["teaching_extra"]["category"] == "Gastrointestinal"
    assert case["teaching_extra"]["level"] == "Intermediate"
    assert case["teaching_extra"]["diagnosis_confirmed"] == "yes"
    assert case["teaching_extra"]["affiliation"] == "St Elsewhere"
    assert case["status"] == "complete"
    assert sorted(s["instance_count"] for s in case["series"]) == [1, 1, 1, 1, 1]


def test_an_export_is_assembled_and_routed_to_the_authors_personal_folder(casebank, live, client, make_user):
    make_user("alice")  # GMC 7000001, the author
    images, report, manifest = export()
    statuses = [r.Status for r in send(live, [manifest, report, *images], calling_ae="ANYPACS")]
    assert statuses == [0, 0, 0, 0, 0]
    case = case_json(client, casebank)
    assert case["folder"]["path"] == "/alice"
    assert_full_teaching_text(case)
    assert client.get("/api/search", params={"q": "pneumatosis"}).json()["total"] == 1


def test_shuffled_over_two_associations_gives_the_same_case(casebank, live, client, make_user):
    make_user("alice")
    images, report, manifest = export()
    objects = [manifest, report, *images]
    random.Random(7).shuffle(objects)
    send(live, objects[:2], calling_ae="PACS1")
    assert the_case(casebank).status.value == "pending"
    send(live, objects[2:], calling_ae="PACS1")  # the same PACS on a second association
    with casebank.database.session() as session:
        assert session.scalar(select(func.count(Case.id))) == 1
    assert_full_teaching_text(case_json(client, casebank))


def test_routing_by_called_ae_to_a_shared_folder(casebank, live, client, make_user):
    alice, admin = make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        shared = folders.create_folder(session, admin, "Teaching", FolderKind.SHARED)
        folders.grant(session, admin, shared, alice, view=True, send=True)
        users.bind_called_ae(session, "TEACHING", shared)
    images, report, manifest = export()
    send(live, [*images, report, manifest], called_ae="TEACHING")
    case = case_json(client, casebank)
    assert case["folder"]["path"] == "/Teaching" and case["notice"] == ""
    assert_full_teaching_text(case)


def test_routing_to_the_folder_named_in_the_manifest(casebank, live, client, make_user):
    alice, admin = make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        ldm = folders.create_folder(session, admin, "LDM", FolderKind.LDM)
        chest = folders.create_folder(session, admin, "Chest", FolderKind.LDM, parent=ldm)
        folders.grant(session, admin, chest, alice, send=True)
    images, report, manifest = export(description="Nice case\nfolder: /LDM/Chest")
    send(live, [manifest, *images, report])
    assert case_json(client, casebank)["folder"]["path"] == "/LDM/Chest"


def test_a_restricted_folder_refuses_a_sender_without_rights(casebank, live, client, make_user):
    alice, admin = make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        exam = folders.create_folder(session, admin, "Exam", FolderKind.EXAM)
        folders.grant(session, admin, exam, alice, view=True, send=True)
        folders.restrict_senders(session, admin, exam, gmc_numbers=["9999999"], calling_aes=[])
        users.bind_called_ae(session, "EXAM", exam)
    images, report, manifest = export()
    send(live, [manifest, report, *images], called_ae="EXAM")
    case = case_json(client, casebank)
    assert case["folder"]["path"] == "/alice"
    assert "Not filed in /Exam" in case["notice"] and "listed senders" in case["notice"]


def test_a_folder_without_send_right_sends_the_case_home_with_a_notice(casebank, live, client, make_user):
    make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        admin = users.get_user(session, "root")
        folders.create_folder(session, admin, "Private", FolderKind.SHARED)
    images, report, manifest = export(description="folder: /Private")
    send(live, [manifest, report, *images])
    case = case_json(client, casebank)
    assert case["folder"]["path"] == "/alice"
    assert case["notice"] == "Not filed in /Private (folder named in the manifest): alice has no send right on it."


def test_an_unknown_author_waits_in_the_inbox_and_moves_when_their_account_is_made(casebank, live, client, make_user):
    images, report, manifest = export(teaching(gmc="5550001"))
    send(live, [manifest, report, *images])
    with casebank.database.session() as session:
        case = session.scalars(select(Case)).one()
        assert case.folder.kind is FolderKind.INBOX
        assert "5550001" in case.notice
        users.add_user(session, "newbie", email="n@nhs.example", gmc="5550001", password="pw-newbie-for-tests-only")
    case = case_json(client, casebank, "newbie")
    assert case["folder"]["path"] == "/newbie"
    assert client.get("/api/search", params={"q": "pneumatosis"}).json()["total"] == 1


def test_an_identifiable_object_is_acknowledged_but_quarantined(casebank, live, make_user):
    make_user("alice")
    images, report, manifest = export()
    leaky = images[0]
    leaky.PatientBirthDate = "19600101"
    leaky.OtherPatientIDs = "NHS 943 476 5919"
    not_declared = images[1]
    del not_declared.DeidentificationMethodCodeSequence
    responses = send(live, [leaky, not_declared])
    assert [r.Status for r in responses] == [0, 0]  # the sender's job is done
    with casebank.database.session() as session:
        held = session.scalars(select(QuarantinedObject).order_by(QuarantinedObject.id)).all()
        assert [q.sop_instance_uid for q in held] == [leaky.SOPInstanceUID, not_declared.SOPInstanceUID]
        assert any("PatientBirthDate" in r for r in held[0].reasons)
        assert any("De-identification Method Code Sequence" in r for r in held[1].reasons)
        assert session.scalar(select(func.count(Instance.id))) == 0
        assert session.scalar(select(func.count(Case.id))) == 0


def test_missing_references_make_an_incomplete_case_after_the_wait(casebank, live, client, make_user):
    make_user("alice")
    images, report, manifest = export()
    send(live, [manifest, report, images[0]])
    with casebank.database.session() as session:
        assert sweep(session, utcnow(), timedelta(seconds=600)) == 0  # still waiting
    with casebank.database.session() as session:
        sweep(session, utcnow() + timedelta(seconds=601), timedelta(seconds=600))
    case = case_json(client, casebank)
    assert case["status"] == "incomplete"
    assert sorted(case["missing"]) == sorted(str(ds.SOPInstanceUID) for ds in images[1:])
    assert case["title"] == "Pneumatosis intestinalis in an adult"


def test_images_without_a_manifest_need_details_after_the_wait(casebank, live, client, make_user):
    alice = make_user("alice")
    with casebank.database.session() as session:
        users.bind_ae(session, "PACS1", session.merge(alice))
    send(live, dicom_data.study(["CT_small.dcm"]))
    with casebank.database.session() as session:
        sweep(session, utcnow() + timedelta(hours=1), timedelta(seconds=600))
    case = case_json(client, casebank)
    assert case["status"] == "needs_details" and case["folder"]["path"] == "/alice"


def test_same_uid_with_different_content_is_kept_and_flagged(casebank, live, make_user):
    make_user("alice")
    [image] = dicom_data.study(["CT_small.dcm"])
    send(live, [image])
    image.SeriesDescription = "changed after sending"
    [response] = send(live, [image])
    assert response.Status == 0
    with casebank.database.session() as session:
        [conflict] = session.scalars(select(InstanceConflict)).all()
        assert casebank.blobs.exists(conflict.blob_sha256)
        stored = session.scalars(select(Instance)).one()
        assert stored.blob_sha256 != conflict.blob_sha256


def test_a_hard_limit_refuses_with_a700_naming_the_folder(casebank, live, make_user):
    alice = make_user("alice")
    with casebank.database.session() as session:
        home = folders.personal_folder(session, alice)
        home.storage_limit_bytes, home.limit_is_hard = 50_000, True
        users.bind_ae(session, "PACS1", session.merge(alice))
    first, second = dicom_data.study(["CT_small.dcm", "CT_small.dcm"])
    assert send(live, [first])[0].Status == 0
    [refused] = send(live, [second])
    assert refused.Status == 0xA700
    assert refused.ErrorComment == "folder /alice is full"


def test_admins_inspect_release_and_delete_quarantined_objects(casebank, live, client, make_user):
    from archive.models import AuditEvent

    alice, _admin = make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        users.bind_ae(session, "PACS1", session.merge(alice))
    first, second = dicom_data.study(["CT_small.dcm", "MR_small.dcm"])
    for ds in (first, second):
        ds.PatientIdentityRemoved = "NO"
    send(live, [first, second])

    login(client, "alice")
    assert client.get("/api/admin/quarantine").status_code == 404  # as if there were none
    login(client, "root")
    held = client.get("/api/admin/quarantine").json()
    assert [h["sop_instance_uid"] for h in held] == [first.SOPInstanceUID, second.SOPInstanceUID]
    detail = client.get(f"/api/admin/quarantine/{held[0]['id']}").json()
    assert detail["header"]["00080018"]["Value"] == [first.SOPInstanceUID]
    assert "Patient Identity Removed (0012,0062) is not YES" in detail["reasons"]

    assert client.post(f"/api/admin/quarantine/{held[0]['id']}/release").status_code == 204
    assert client.delete(f"/api/admin/quarantine/{held[1]['id']}").status_code == 204
    again = client.post(f"/api/admin/quarantine/{held[1]['id']}/release")
    assert again.status_code == 422 and "already deleted" in again.json()["detail"]
    assert client.get("/api/admin/quarantine").json() == []
    with casebank.database.session() as session:
        assert [i.sop_instance_uid for i in session.scalars(select(Instance))] == [first.SOPInstanceUID]
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "quarantine")))
        assert {"quarantine.held", "quarantine.inspected", "quarantine.released", "quarantine.deleted"} <= actions


def test_objects_arriving_after_the_wait_complete_an_incomplete_case(casebank, live, client, make_user):
    make_user("alice")
    images, report, manifest = export()
    send(live, [manifest, report, images[0]])
    with casebank.database.session() as session:
        sweep(session, utcnow() + timedelta(seconds=601), timedelta(seconds=600))
    send(live, [images[1]])
    assert case_json(client, casebank)["missing"] == [str(images[2].SOPInstanceUID)]
    send(live, [manifest, report, *images])  # the sender's retry after an outage
    case = case_json(client, casebank)
    assert case["status"] == "complete" and case["missing"] == [] and case["notice"] == ""
