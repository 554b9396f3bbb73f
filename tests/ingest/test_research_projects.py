"""Research projects end to end: PACS -> edge (a project, a site) -> archive -> the project only.

Real peers: Orthanc sends to the edge, the edge's outbox sends to the archive's DICOM receiver,
aiosmtpd receives the QC mail, requests reads every path a non-member might try."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import requests
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts
from sqlalchemy import func, select

from archive import projects, users
from archive.models import Case, Instance, QcState, Study, TrialSubmission
from ingest.edge.outbox import Destination
from ingest.edge.projects import Project as EdgeProject
from ingest.edge.projects import TrialIdentity, generate_custodian_key, reidentify
from ingest.edge.service import Edge, EdgeConfig
from ingest.tce.atfi import TeachingFileInfo, build_teaching_file_info
from ingest.tce.manifest import build_manifest

from .. import dicom_data
from ..peers import LiveServer, free_port, orthanc, smtp_server
from ..senders import register_ae

pytestmark = pytest.mark.peers

PASSPHRASE = b"custodian-passphrase"
IDENTIFIERS = ("Smith^John", "9434765919", "ACC-765919", "St Elsewhere", "19600101")


@pytest.fixture
def smtp():
    with smtp_server() as inbox:
        yield inbox


@pytest.fixture
def settings(settings, smtp):
    """The archive mails through the test's aiosmtpd."""
    return settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{smtp.port}"})


@pytest.fixture(scope="module")
def custodian(tmp_path_factory) -> tuple[Path, bytes]:
    folder = tmp_path_factory.mktemp("custodian")
    generate_custodian_key(folder / "key.pem", folder / "key.pub", PASSPHRASE)
    return folder / "key.pem", (folder / "key.pub").read_bytes()


def identified(patient_id: str, name: str, study_date: str, series: list[tuple[str, str]],
               time_point: str, project: str = "lung", report_gmc: str = "") -> list[Dataset]:
    """A research selection as a PACS holds it: identified images, optionally an ATFI, a manifest."""
    images = dicom_data.study(["CT_small.dcm"] * len(series), description="CT thorax")
    for ds, (modality, description) in zip(images, series):
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, patient_id, "19600101"
        ds.AccessionNumber, ds.InstitutionName = f"ACC-{patient_id[-6:]}", "St Elsewhere"
        ds.PatientIdentityRemoved = "NO"
        del ds.DeidentificationMethodCodeSequence
        for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            setattr(ds, keyword, study_date)
        ds.Modality, ds.SeriesDescription = modality, description
    objects = list(images)
    if report_gmc:
        info = TeachingFileInfo(author_name="Other^Olga^^Dr", author_gmc=report_gmc, abstract="Spiculated nodule",
                                findings="Right upper lobe nodule", diagnosis="Adenocarcinoma")
        objects.append(build_teaching_file_info(info, images))
    objects.append(build_manifest(objects, purpose="research",
                                  description=f"lung screening\nproject: {project}\ntime point: {time_point}"))
    return objects


def start_edge(tmp_path: Path, live: LiveServer, ae_title: str, site: str, custodian_public: bytes,
               protocol_id: str = "LUNG-01") -> Edge:
    data = tmp_path / f"edge-{ae_title}"
    EdgeProject.create(data / "projects", "lung", custodian_public, TrialIdentity(
        protocol_id=protocol_id, protocol_name="Lung screening", sponsor="NIHR", site_id=site, site_name=f"Hospital {site}",
        coordinating_center="Leeds"))
    edge = Edge(EdgeConfig(data=data, archive=Destination(live.ae_title, "127.0.0.1", live.dicom_port),
                           ae_title=ae_title, host="127.0.0.1", port=free_port()))
    edge.start()
    return edge


def store(port: int, datasets: list[Dataset]) -> None:
    """Send to an edge as a PACS would (one association)."""
    ae = AE(ae_title="PACS")
    ae.requested_contexts = [cx for cx in AllStoragePresentationContexts if cx.abstract_syntax in
                             {str(ds.SOPClassUID) for ds in datasets}]
    assoc = ae.associate("127.0.0.1", port, ae_title="EDGE")
    assert assoc.is_established
    try:
        for ds in datasets:
            assert assoc.send_c_store(ds).Status == 0
    finally:
        assoc.release()


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.2)


def instances(casebank) -> int:
    with casebank.database.session() as session:
        return session.scalar(select(func.count(Instance.id))) or 0


def bearer(casebank, username: str) -> dict[str, str]:
    with casebank.database.session() as session:
        return {"Authorization": f"Bearer {users.issue_token(session, users.get_user(session, username))}"}


def lung_project(casebank, sites: dict[str, list[str]], contact: str = "site-{}@trial.example") -> None:
    """Project lung (protocol LUNG-01) with a PI, a researcher, a coordinator, sites and two time points."""
    with casebank.database.session() as session:
        admin, pi = users.get_user(session, "root"), users.get_user(session, "pat")
        project = projects.create_project(session, admin, "lung", protocol_id="LUNG-01", title="Lung screening",
                                          sponsor="NIHR", principal_investigator=pi)
        for site_id, titles in sites.items():
            projects.enrol_site(session, pi, project, site_id, name=f"Hospital {site_id}",
                                contact_email=contact.format(site_id.lower()), ae_titles=titles)
        projects.set_member(session, pi, project, users.get_user(session, "rita"), projects.ProjectRole.RESEARCHER)
        projects.set_member(session, pi, project, users.get_user(session, "cora"), projects.ProjectRole.COORDINATOR)
        projects.define_time_point(session, pi, project, "baseline", label="Baseline",
                                   expected_series=[{"modality": "CT", "description": "*chest*"}])
        projects.define_time_point(session, pi, project, "FU1", label="Follow-up 1", day=90, window_days=30,
                                   expected_series=[{"modality": "CT", "description": "*chest*"}])


@pytest.fixture
def people(make_user):
    return {name: make_user(name, admin=name == "root") for name in ("root", "pat", "rita", "cora", "olga")}


def test_orthanc_edge_archive_files_a_project_export_into_the_project_and_hides_it_from_non_members(
    casebank, people, tmp_path, custodian,
):
    """The ATFI names olga (a teaching user) as author: the case still lands in project lung, not in
    her personal folder; olga, and an admin who is no member, find nothing of it on any path."""
    lung_project(casebank, {"A": ["EDGE-A"]})
    register_ae(casebank, "EDGE-A", "edge", host="127.0.0.1")
    objects = identified("9434765919", "Smith^John", "20250310", [("CT", "CT chest"), ("CT", "CT chest lung")],
                         "baseline", report_gmc=people["olga"].gmc)
    paths = dicom_data.write(objects, tmp_path / "pacs")
    with LiveServer(casebank) as live:
        edge = start_edge(tmp_path, live, "EDGE-A", "A", custodian[1])
        try:
            with orthanc({"edge": ["EDGE-A", "127.0.0.1", edge.config.port]}, tmp_path / "orthanc") as pacs:
                ids = [requests.post(f"{pacs}/instances", data=p.read_bytes(), timeout=10).json()["ID"] for p in paths]
                reply = requests.post(f"{pacs}/modalities/edge/store", json=ids, timeout=60).json()
            assert reply["FailedInstancesCount"] == 0
            wait_until(lambda: instances(casebank) == len(objects), what="the archive to hold the export")
        finally:
            edge.stop()
        with casebank.database.session() as session:
            case = session.scalars(select(Case)).one()
            lung = projects.project_by_name(session, "lung")
            assert case.folder_id == projects.folders_of(session, lung).collection.id, case.notice
            entry = session.scalars(select(TrialSubmission)).one()
            assert entry.state is QcState.PASSED, entry.reasons
            study = session.scalars(select(Study)).one()
            trial = dict(study.trial)
            case_id, study_id, study_uid = case.id, study.id, study.study_instance_uid
            instance_id = study.series[0].instances[0].id
        assert trial["protocol_id"] == "LUNG-01" and trial["site_id"] == "A" and trial["time_point_id"] == "baseline"
        assert trial["subject_id"].startswith("CB-") and trial["longitudinal"] == "MODIFIED"

        case_paths = [f"/api/cases/{case_id}", f"/cases/{case_id}", f"/api/cases/{case_id}/viewer",
                      f"/api/instances/{instance_id}/rendered", f"/api/instances/{instance_id}/dicom",
                      f"/dicomweb/studies/{study_uid}", f"/dicomweb/studies/{study_uid}/metadata",
                      f"/fhir/ImagingStudy/{study_id}"]
        project_paths = ["/api/projects/lung", "/api/projects/lung/search", "/api/projects/lung/matrix",
                         f"/projects/{lung.id}", f"/projects/{lung.id}/matrix"]
        for outsider in ("olga", "root"):  # root: an admin manages the project but sees none of its cases
            headers = bearer(casebank, outsider)
            for path in case_paths + (project_paths if outsider == "olga" else []):
                answer = requests.get(live.url + path, headers=headers, timeout=10)
                assert answer.status_code == 404, (outsider, path, answer.status_code)
            for search in ("/api/search", "/api/projects/lung/search") if outsider == "root" else ("/api/search",):
                for q in ("nodule", ""):
                    assert requests.get(live.url + search, params={"q": q}, headers=headers, timeout=10).json()["total"] == 0
            qido = requests.get(f"{live.url}/dicomweb/studies", headers={**headers, "Accept": "application/dicom+json"}, timeout=10)
            assert qido.status_code in (200, 204) and study_uid not in qido.text

        member = bearer(casebank, "rita")
        found = requests.get(f"{live.url}/api/projects/lung/search", params={"q": "nodule"}, headers=member, timeout=10).json()
        assert [h["case_id"] for h in found["hits"]] == [case_id]
        assert requests.get(f"{live.url}/api/search", params={"q": "nodule"}, headers=member, timeout=10).json()["total"] == 0
        assert requests.get(f"{live.url}/api/cases/{case_id}", headers=member, timeout=10).status_code == 200
        qido = requests.get(f"{live.url}/dicomweb/studies", headers={**member, "Accept": "application/dicom+json"}, timeout=10)
        assert study_uid in qido.text
        assert requests.get(f"{live.url}/dicomweb/studies/{study_uid}/metadata", headers=member, timeout=10).status_code == 200

    with casebank.database.session() as session:  # not in olga's (or anyone's) teaching folder
        assert session.scalars(select(Case)).one().folder.kind.value == "project"


def test_two_sites_fill_the_matrix_a_missing_series_fails_qc_by_mail_the_resubmission_supersedes_and_an_unenrolled_site_is_held(
    casebank, people, tmp_path, custodian, smtp,
):
    lung_project(casebank, {"A": ["EDGE-A"], "B": ["EDGE-B"]})
    for title in ("EDGE-A", "EDGE-B", "EDGE-C"):
        register_ae(casebank, title, "edge", host="127.0.0.1")
    patients = {"A": [("9000000001", "Alpha^One"), ("9000000002", "Alpha^Two"), ("9000000003", "Alpha^Three")],
                "B": [("9000000011", "Beta^One"), ("9000000012", "Beta^Two"), ("9000000013", "Beta^Three")]}
    chest = [("CT", "CT chest")]
    with LiveServer(casebank) as live:
        edges = {site: start_edge(tmp_path, live, f"EDGE-{site}", site, custodian[1]) for site in ("A", "B", "C")}
        try:
            sent = 0
            for site in ("A", "B"):
                for number, (patient_id, name) in enumerate(patients[site]):
                    baseline = identified(patient_id, name, "20250110", chest, "baseline")
                    # the second subject of site A forgets the chest series at follow-up
                    follow_up = identified(patient_id, name, "20250412",
                                           [("CT", "CT abdomen")] if (site, number) == ("A", 1) else chest, "FU1")
                    for export in (baseline, follow_up):
                        store(edges[site].config.port, export)
                        sent += len(export)
            wait_until(lambda: instances(casebank) == sent, what="all twelve submissions")

            with casebank.database.session() as session:
                lung = projects.project_by_name(session, "lung")
                from archive import trials

                grid = trials.matrix(session, users.get_user(session, "cora"), lung)
                assert len(grid.rows) == 6 and [p.code for p in grid.time_points] == ["baseline", "FU1"]
                states = {(r.subject.subject_id, r.subject.site.site_id, code): cell.state
                          for r in grid.rows for code, cell in r.cells.items()}
                assert len(states) == 12
                failed = [(site, code) for (_, site, code), state in states.items() if state is QcState.FAILED]
                assert failed == [("A", "FU1")], states
                failing = next(r for r in grid.rows if r.cells["FU1"].state is QcState.FAILED)
                assert "expected series missing: CT" in failing.cells["FU1"].reasons[0]
                only_b = trials.matrix(session, users.get_user(session, "cora"), lung, site_id="B")
                assert {r.subject.site.site_id for r in only_b.rows} == {"B"} and len(only_b.rows) == 3
                failing_subject = failing.subject.subject_id

            wait_until(lambda: len(smtp.messages) >= 1, timeout=10, what="the QC failure mail")
            [mail] = smtp.messages
            assert mail.rcpt_tos == ["site-a@trial.example"]
            text = mail.content.decode()
            assert failing_subject in text and "expected series missing" in text and "Follow-up 1" in text
            assert not any(identifier in text for identifier in IDENTIFIERS)

            # site A sends the follow-up again, with the chest series: it supersedes the failed one
            patient_id, name = patients["A"][1]
            again = identified(patient_id, name, "20250412", [("CT", "CT chest"), ("CT", "CT abdomen")], "FU1")
            store(edges["A"].config.port, again)
            sent += len(again)
            # a site that is not enrolled: held for the coordinators, never filed
            stranger = identified("9000000099", "Gamma^One", "20250110", chest, "baseline")
            store(edges["C"].config.port, stranger)
            sent += len(stranger)
            wait_until(lambda: instances(casebank) == sent, what="the resubmission and the stranger")
        finally:
            for edge in edges.values():
                edge.stop()

        with casebank.database.session() as session:
            lung = projects.project_by_name(session, "lung")
            cora = users.get_user(session, "cora")
            grid = trials.matrix(session, cora, lung)
            cell = next(r for r in grid.rows if r.subject.subject_id == failing_subject).cells["FU1"]
            assert cell.state is QcState.PASSED and cell.superseded == 1
            old = session.scalars(select(TrialSubmission).where(TrialSubmission.state == QcState.SUPERSEDED)).one()
            assert old.superseded_by_id == cell.submission_id
            assert len(grid.rows) == 6  # the stranger is no subject of the trial
            held = trials.held_cases(session, cora, lung)
            assert len(held) == 1 and "EDGE-C is not enrolled to send for site C" not in held[0].notice
            assert "site C is not enrolled in project lung" in held[0].notice
            assert held[0].folder.kind.value == "hold"
            case_ids = [c.id for c in session.scalars(select(Case))]
            assert all(session.get(Case, i).folder.project_id == lung.id for i in case_ids)  # nothing in teaching
        cora_headers = bearer(casebank, "cora")
        api = requests.get(f"{live.url}/api/projects/lung/matrix", headers=cora_headers, timeout=10).json()
        assert len(api["rows"]) == 6
        assert [h["case_id"] for h in requests.get(f"{live.url}/api/projects/lung/held", headers=cora_headers,
                                                   timeout=10).json()] == [held[0].id]
        assert requests.get(f"{live.url}/api/projects/lung/held", headers=bearer(casebank, "rita"), timeout=10).status_code == 403


def test_only_the_custodian_at_the_edge_can_reidentify_a_subject_and_the_archive_holds_no_identifier(
    casebank, people, tmp_path, custodian,
):
    lung_project(casebank, {"A": ["EDGE-A"]})
    register_ae(casebank, "EDGE-A", "edge", host="127.0.0.1")
    objects = identified("9434765919", "Smith^John", "20250310", [("CT", "CT chest")], "baseline")
    with LiveServer(casebank) as live:
        edge = start_edge(tmp_path, live, "EDGE-A", "A", custodian[1])
        try:
            store(edge.config.port, objects)
            wait_until(lambda: instances(casebank) == len(objects), what="the export")
        finally:
            edge.stop()
        app_paths = list(requests.get(f"{live.url}/api/openapi.json", timeout=10).json()["paths"])
    with casebank.database.session() as session:
        study = session.scalars(select(Study)).one()
        subject = study.trial["subject_id"]
        blobs = [casebank.blobs.read(i.blob_sha256) for se in study.series for i in se.instances]
    # the edge's custodian, with the private key and a reason, finds the patient; the log is audited
    project = EdgeProject.open(tmp_path / "edge-EDGE-A" / "projects", "lung")
    key = custodian[0].read_bytes()
    assert reidentify(project, key, PASSPHRASE, "follow-up of an incidental finding", subject) == "9434765919"
    assert "reidentify" in (project.folder / "audit.jsonl").read_text()
    with pytest.raises(Exception, match="passphrase is wrong"):
        reidentify(project, key, b"not the passphrase", "follow-up of an incidental finding", subject)
    # the archive has no way to: no route, no key, no log, no original identifier anywhere it keeps
    assert app_paths and not [p for p in app_paths if "reident" in p.lower() or "custod" in p.lower()]
    from api.cli import build_parser

    archive_commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "reidentify" not in archive_commands and "reidentify" not in archive_commands["project"].format_help()
    data = casebank.settings.data
    kept = [p for p in data.rglob("*") if p.is_file()]
    assert not [p for p in kept if p.name in ("secret", "custodian.pem") or p.suffix == ".pem"]
    for blob in blobs:
        ds = dcmread(io.BytesIO(blob))
        assert ds.PatientID == subject == ds.ClinicalTrialSubjectID and ds.PatientIdentityRemoved == "YES"
        for identifier in IDENTIFIERS:
            assert identifier.encode() not in blob
    database = b"".join(p.read_bytes() for p in kept if "sqlite" in p.name)
    for identifier in IDENTIFIERS:
        assert identifier.encode() not in database
