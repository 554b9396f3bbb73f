"""The export manager at the edge: identified objects in, de-identified whole selections out."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from pydicom import dcmread
from sqlalchemy import func, select

from archive.models import Case, Instance, QuarantinedObject
from ingest.edge.outbox import Destination
from ingest.edge.service import Edge, EdgeConfig
from ingest.tce.atfi import TeachingFileInfo

from .. import dicom_data
from ..senders import register_ae
from ..peers import LiveServer, free_port, orthanc, wait_for_port
from ..csrf_client import BrowserLikeClient

STORESCU = "/usr/bin/storescu"
CASEBANK = str(Path(sys.executable).with_name("casebank"))
IDENTIFIERS = [b"Smith^John", b"SMITH^JOHN", b"9434765919", b"19600101", b"ACC-778899", b"St Elsewhere"]

pytestmark = pytest.mark.peers



@pytest.fixture(autouse=True)
def edge_is_registered(request):
    """The archive knows this edge: an export manager whose reports' authors it believes."""
    if "casebank" in request.fixturenames:
        register_ae(request.getfixturevalue("casebank"), "CASEBANK-EDGE", "edge", host="127.0.0.1")


def identified_export(count: int, gmc: str = "7000001"):
    """A TCE export as a PACS holds it: the patient is named, dated and numbered."""
    images = dicom_data.study(["CT_small.dcm"] * count, description="CT abdomen")
    for ds in images:
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Smith^John", "9434765919", "19600101"
        ds.AccessionNumber, ds.InstitutionName = "ACC-778899", "St Elsewhere"
        ds.PatientIdentityRemoved = "NO"
        del ds.DeidentificationMethodCodeSequence
    from ingest.tce.atfi import build_teaching_file_info
    from ingest.tce.manifest import build_manifest

    info = TeachingFileInfo(
        author_name="Jones^Ann^^Dr", author_gmc=gmc, abstract="Small bowel obstruction",
        history="Vomiting", findings="Dilated small bowel loops", diagnosis="Adhesional obstruction",
    )
    report = build_teaching_file_info(info, images)
    manifest = build_manifest([*images, report], description="teaching", observer_name="Jones^Ann")
    return [*images, report, manifest]


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.2)


def stored_count(casebank) -> int:
    with casebank.database.session() as session:
        return session.scalar(select(func.count(Instance.id)))


def test_orthanc_to_edge_to_archive_arrives_deidentified_in_the_authors_folder(casebank, make_user, tmp_path):
    make_user("alice")
    objects = identified_export(3)
    paths = dicom_data.write(objects, tmp_path / "pacs-files")
    with LiveServer(casebank) as archive:
        edge = Edge(EdgeConfig(
            data=tmp_path / "edge", archive=Destination(archive.ae_title, "127.0.0.1", archive.dicom_port),
            host="127.0.0.1", port=free_port(),
        ))
        edge.start()
        try:
            with orthanc({"edge": ["CASEBANK-EDGE", "127.0.0.1", edge.config.port]}, tmp_path / "orthanc") as pacs:
                ids = [requests.post(f"{pacs}/instances", data=p.read_bytes(), timeout=10).json()["ID"] for p in paths]
                reply = requests.post(f"{pacs}/modalities/edge/store", json=ids, timeout=60).json()
            assert reply["FailedInstancesCount"] == 0
            wait_until(lambda: stored_count(casebank) == 5, what="the archive to hold 5 objects")
        finally:
            edge.stop()
    with casebank.database.session() as session:
        assert session.scalar(select(func.count(QuarantinedObject.id))) == 0  # the door check is satisfied
        case = session.scalars(select(Case)).one()
        assert case.folder.name == "alice" and case.status.value == "complete"
        assert case.title == "Small bowel obstruction" and case.author_gmc == "7000001"
        blobs = [casebank.blobs.read(i.blob_sha256) for s in case.studies for se in s.series for i in se.instances]
        originals = {str(ds.SOPInstanceUID) for ds in objects}
    for blob in blobs:
        for identifier in IDENTIFIERS:
            assert identifier not in blob
    assert not originals & {str(dcmread(io.BytesIO(b)).SOPInstanceUID) for b in blobs}


def test_an_archive_outage_and_an_edge_restart_lose_nothing_and_duplicate_nothing(casebank, make_user, tmp_path):
    make_user("alice")
    objects = identified_export(198)  # 198 images + report + manifest = 200 objects
    folder = tmp_path / "export"
    dicom_data.write(objects, folder)
    edge_data, edge_port = tmp_path / "edge", free_port()
    archive_port = casebank.settings.dicom_port

    def start_edge() -> subprocess.Popen:
        process = subprocess.Popen(
            [CASEBANK, "edge", "run", "--data", str(edge_data), "--port", str(edge_port), "--http", f"127.0.0.1:{free_port()}",
             "--archive", f"{casebank.settings.ae_title}@127.0.0.1:{archive_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "edge.log").open("a"),
        )
        wait_for_port(edge_port, timeout=60)
        return process

    def pending() -> int:
        return len(list((edge_data / "outbox" / "pending").glob("*.dcm")))

    edge = start_edge()
    try:
        sent = subprocess.run(
            [STORESCU, "-aet", "PACS", "-aec", "CASEBANK-EDGE", "+sd", "127.0.0.1", str(edge_port), str(folder)],
            capture_output=True, text=True, env={**os.environ, "TCP_NODELAY": "1"}, timeout=120,
        )
        assert sent.returncode == 0, sent.stderr
        wait_until(lambda: pending() == 200, what="200 objects queued while the archive is down")
        edge.send_signal(signal.SIGTERM)
        edge.wait(timeout=30)
        edge = start_edge()  # restarted with everything still queued
        assert pending() == 200
        with LiveServer(casebank):
            wait_until(lambda: pending() == 0 and stored_count(casebank) == 200, timeout=120,
                       what="the outbox to drain into the archive")
            time.sleep(1)
    finally:
        edge.terminate()
        edge.wait(timeout=30)
    with casebank.database.session() as session:
        uids = session.scalars(select(Instance.sop_instance_uid)).all()
        assert len(uids) == len(set(uids)) == 200
        assert session.scalars(select(Case)).one().status.value == "complete"


def test_a_delayed_selection_is_held_until_a_later_manifest_releases_it(casebank, make_user, tmp_path):
    from pynetdicom import AE, StoragePresentationContexts, build_context

    from ingest.tce.manifest import build_manifest

    make_user("alice")
    objects = identified_export(2)
    images, report, final_manifest = objects[:2], objects[2], objects[3]
    delayed = build_manifest([*images, report], description="teaching", delay_reason="TCE014")
    with LiveServer(casebank) as archive:
        edge = Edge(EdgeConfig(
            data=tmp_path / "edge", archive=Destination(archive.ae_title, "127.0.0.1", archive.dicom_port),
            host="127.0.0.1", port=free_port(),
        ))
        edge.start()
        try:
            ae = AE(ae_title="PACS")
            ae.requested_contexts = [*StoragePresentationContexts[:100], build_context("1.2.840.10008.5.1.4.1.1.88.59"),
                                     build_context("1.2.840.10008.5.1.4.1.1.88.22")]
            assoc = ae.associate("127.0.0.1", edge.config.port, ae_title="CASEBANK-EDGE")
            assert all(assoc.send_c_store(ds).Status == 0 for ds in [*images, report, delayed])
            time.sleep(1)
            [held] = edge.manager.selections()
            assert held.state == "held" and "histopathology" in held.note.lower()
            assert stored_count(casebank) == 0  # nothing left the hospital
            assert assoc.send_c_store(final_manifest).Status == 0
            assoc.release()
            wait_until(lambda: stored_count(casebank) == 4, what="the released selection")
            states = {s.manifest_uid: s.state for s in edge.manager.selections()}
            assert states == {str(delayed.SOPInstanceUID): "superseded", str(final_manifest.SOPInstanceUID): "released"}
        finally:
            edge.stop()


def test_the_edge_page_shows_held_selections_with_their_reason_and_the_outbox(tmp_path):

    from api.edge_app import create_edge_app
    from ingest.edge.selections import Selection

    edge = Edge(EdgeConfig(data=tmp_path / "edge", archive=Destination("ARCHIVE", "127.0.0.1", free_port())))
    edge.manager._save(Selection(
        "1.2.3", ["1.2.4"], delay_reason="Delay export until histopathology is available", state="held",
        note="delayed: Delay export until histopathology is available",
    ))
    edge.outbox.put(b"DICM", "1.2.5")
    edge.users.add("ajones", display_name="Jones^Ann", gmc="7000001", password="pw")
    client = BrowserLikeClient(create_edge_app(edge))
    client.post("/login", data={"username": "ajones", "password": "pw"})
    status = client.get("/api/edge/status").json()
    assert status["outbox"]["pending"] == 1
    assert status["selections"] == [{"manifest": "1.2.3", "state": "held", "objects": 2,
                                     "note": "delayed: Delay export until histopathology is available"}]
    page = client.get("/").text
    assert "delayed: Delay export until histopathology is available" in page and "<strong>1</strong> waiting" in page


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([CASEBANK, *args], input=stdin, capture_output=True, text=True, timeout=120)


def project_export(project: str, patient_id: str):
    """A research selection for `project`: the manifest names the project on a line of its description."""
    from ingest.tce.manifest import build_manifest

    images = identified_export(1)[:1]
    images[0].PatientID = patient_id
    return [*images, build_manifest(images, purpose="research", description=f"cohort A\nproject: {project}")]


def test_research_projects_pseudonymise_per_project_and_only_the_custodian_can_reidentify(tmp_path):
    from pynetdicom import AE, StoragePresentationContexts, build_context

    data = tmp_path / "edge"
    assert cli("edge", "keygen", str(tmp_path / "custodian.pem"), str(tmp_path / "custodian.pub"), stdin="correct horse\n").returncode == 0
    for project in ("lung", "liver"):
        made = cli("edge", "project", project, "--custodian-public-key", str(tmp_path / "custodian.pub"), "--data", str(data))
        assert made.returncode == 0, made.stderr
    edge = Edge(EdgeConfig(data=data, archive=Destination("ARCHIVE", "127.0.0.1", free_port()), host="127.0.0.1", port=free_port()))
    edge.start()
    try:
        ae = AE(ae_title="PACS")
        ae.requested_contexts = [*StoragePresentationContexts[:100], build_context("1.2.840.10008.5.1.4.1.1.88.59")]
        assoc = ae.associate("127.0.0.1", edge.config.port, ae_title="CASEBANK-EDGE")
        exports = [project_export("lung", "9434765919"), project_export("lung", "9434765919"), project_export("liver", "9434765919")]
        for export in exports:
            assert all(assoc.send_c_store(ds).Status == 0 for ds in export)
        assoc.release()
        wait_until(lambda: sum(s.state == "released" for s in edge.manager.selections()) == 3, what="three releases")
        released = {s.manifest_uid: s for s in edge.manager.selections()}
    finally:
        edge.stop()
    queued = {str(ds.SOPInstanceUID): ds for ds in map(dcmread, (data / "outbox" / "pending").glob("*.dcm"))}

    def sent_patient_id(export) -> str:
        selection = released[str(export[-1].SOPInstanceUID)]
        return str(queued[selection.released_uids[str(export[0].SOPInstanceUID)]].PatientID)

    first, second, third = map(sent_patient_id, exports)
    assert "9434765919" not in (first, second, third)
    assert first == second != third  # one patient, one pseudonym per project, unrelated across projects

    key = str(tmp_path / "custodian.pem")
    wrong = cli("edge", "reidentify", "lung", first, "--key", key, "--reason", "checking a finding", "--data", str(data), stdin="wrong passphrase\n")
    assert wrong.returncode == 2 and "passphrase is wrong" in wrong.stderr
    no_reason = cli("edge", "reidentify", "lung", first, "--key", key, "--reason", "x", "--data", str(data), stdin="correct horse\n")
    assert no_reason.returncode == 2 and "reason" in no_reason.stderr
    found = cli("edge", "reidentify", "lung", first, "--key", key, "--reason", "incidental finding needs follow-up",
                "--data", str(data), stdin="correct horse\n")
    assert found.returncode == 0 and found.stdout.strip() == "9434765919"
    maps = cli("edge", "export-maps", "lung", str(tmp_path / "maps"), "--key", key, "--reason", "MIDI-B style validation",
               "--data", str(data), stdin="correct horse\n")
    assert maps.returncode == 0, maps.stderr
    uid_rows = (tmp_path / "maps" / "uid_map.csv").read_text().splitlines()
    assert uid_rows[0] == "id_old,id_new"
    assert f"{exports[0][0].SOPInstanceUID}," in "\n".join(uid_rows)
    assert (tmp_path / "maps" / "patient_id_map.csv").read_text().splitlines()[1] == f"9434765919,{first}"
    audit = (data / "projects" / "lung" / "audit.jsonl").read_text()
    assert "incidental finding needs follow-up" in audit and "MIDI-B style validation" in audit
    for log in (data / "projects" / "lung" / "log").glob("*.json"):
        assert b"9434765919" not in log.read_bytes()  # the log is unreadable without the custodian


def test_burned_in_text_is_blanked_before_an_ultrasound_leaves(casebank, make_user, tmp_path):
    """pydicom's 30-frame ultrasound carries burned-in text: the selection waits until a person
    confirms the preview, then reaches the archive blanked, declaring Clean Pixel Data (113101),
    and the archive's door check files it."""
    import numpy as np
    from pydicom.data import get_testdata_file

    from ingest.deid.pixels import find_text_regions

    from ingest.tce.manifest import build_manifest

    make_user("alice")
    us = dcmread(get_testdata_file("examples_ybr_color.dcm"))
    [template] = dicom_data.study(["CT_small.dcm"])
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName"):
        setattr(us, keyword, template.get(keyword))
    us.PatientBirthDate = "19600101"
    manifest = build_manifest([us], description="teaching")
    with LiveServer(casebank) as archive:
        edge = Edge(EdgeConfig(data=tmp_path / "edge", archive=Destination(archive.ae_title, "127.0.0.1", archive.dicom_port),
                               host="127.0.0.1", port=free_port()))
        edge.start()
        try:
            from pynetdicom import AE, build_context

            ae = AE(ae_title="PACS")
            ae.requested_contexts = [build_context(us.SOPClassUID, [us.file_meta.TransferSyntaxUID]),
                                     build_context("1.2.840.10008.5.1.4.1.1.88.59")]
            assoc = ae.associate("127.0.0.1", edge.config.port, ae_title="CASEBANK-EDGE")
            assert assoc.send_c_store(us).Status == 0 and assoc.send_c_store(manifest).Status == 0
            assoc.release()
            selection = edge.manager.get(str(manifest.SOPInstanceUID))
            assert selection.state == "review", selection.note  # the pixels change: a person looks first
            assert selection.note == "burned-in text found in 1 of 1 image(s): waiting for a person"
            time.sleep(1)
            assert stored_count(casebank) == 0 and edge.outbox.state().pending == 0
            edge.manager.confirm(selection.manifest_uid, "Ann Jones (GMC 7000001)")
            wait_until(lambda: stored_count(casebank) == 2, timeout=120, what="the cleaned ultrasound")
        finally:
            edge.stop()
    with casebank.database.session() as session:
        assert session.scalar(select(func.count(QuarantinedObject.id))) == 0  # the door accepts 113101
        [image] = [i for i in session.scalars(select(Instance)) if i.sop_class_uid == us.SOPClassUID]
        sent = dcmread(casebank.blobs.path(image.blob_sha256))
    assert sent.BurnedInAnnotation == "NO"
    assert "113101" in {str(item.CodeValue) for item in sent.DeidentificationMethodCodeSequence}
    frames = sent.pixel_array
    assert frames.shape[0] == 30
    found = find_text_regions(us)
    assert found.regions and not found.uncertain  # there was text to find
    for region in found.regions:  # and every frame is blank there
        patch = frames[:, region.y:region.y + region.height, region.x:region.x + region.width]
        assert np.ptp(patch) == 0, region
    assert [r for r in find_text_regions(sent).regions if r.source == "ocr"] == []  # nothing left to read
