"""Research projects in the archive: who sees what, where research exports go, QC, cohorts.

Objects enter through the archive's real intake (door check, filing, assembly) as a registered
export manager would send them; the end-to-end path through Orthanc and the edge is in
tests/ingest/test_research_projects.py."""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import select

from archive import cohorts, folders, projects, trials, users
from archive.copying import copy_case
from archive.errors import NotFound, NotPermitted
from archive.filing import Sender
from archive.models import Case, CohortVersion, FolderKind, ProjectRole, QcState, QuarantinedObject, TrialSubmission
from ingest.tce.manifest import build_manifest

from .. import dicom_data
from ..conftest import login
from ..senders import register_ae


def research_export(subject: str, *, study_date: str = "20250110", time_point: str = "baseline",
                    series: tuple[tuple[str, str], ...] = (("CT", "CT chest"),), protocol: str = "LUNG-01",
                    site: str = "A", project: str = "lung", shifted: bool = True, study_uid: str | None = None) -> list[Dataset]:
    """What a site's export manager sends for a project: pseudonymised objects with the Clinical
    Trial attributes, and a research manifest naming the project."""
    images = dicom_data.study(["CT_small.dcm"] * len(series))
    for ds, (modality, description) in zip(images, series):
        if study_uid:
            ds.StudyInstanceUID = study_uid
        ds.PatientID = ds.PatientName = subject
        ds.Modality, ds.SeriesDescription, ds.StudyDate = modality, description, study_date
        ds.LongitudinalTemporalInformationModified = "MODIFIED" if shifted else "UNMODIFIED"
        if protocol:
            ds.ClinicalTrialProtocolID, ds.ClinicalTrialSponsorName = protocol, "NIHR"
            ds.ClinicalTrialSiteID, ds.ClinicalTrialSubjectID = site, subject
            ds.ClinicalTrialTimePointID = time_point
    manifest = build_manifest(images, purpose="research", description=f"screening\nproject: {project}")
    for keyword in ("ClinicalTrialProtocolID", "ClinicalTrialSiteID", "ClinicalTrialTimePointID", "ClinicalTrialSponsorName"):
        if keyword in images[0]:
            setattr(manifest, keyword, images[0].data_element(keyword).value)
    if protocol:
        manifest.ClinicalTrialSubjectID = manifest.PatientID
    return [*images, manifest]


def send(casebank, objects: list[Dataset], calling_ae: str = "EDGE-A", user_id: int | None = None) -> list:
    sender = Sender(calling_ae=calling_ae, called_ae="CASEBANK", address="127.0.0.1") if user_id is None \
        else Sender(user_id=user_id)
    outcomes = []
    for ds in objects:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        outcomes.append(casebank.intake.accept(buffer.getvalue(), sender))
    assert all(o.ok for o in outcomes), [o.comment for o in outcomes]
    return outcomes


@pytest.fixture
def lung(casebank, make_user):
    """Project lung with PI pat, researcher rita, coordinator cora, uploader ulla; site A sends from EDGE-A."""
    for name in ("root", "pat", "rita", "cora", "ulla", "olga"):
        make_user(name, admin=name == "root")
    register_ae(casebank, "EDGE-A", "edge", host="127.0.0.1")
    register_ae(casebank, "EDGE-B", "edge", host="127.0.0.1")
    with casebank.database.session() as session:
        get = lambda name: users.get_user(session, name)  # noqa: E731
        project = projects.create_project(session, get("root"), "lung", protocol_id="LUNG-01",
                                          principal_investigator=get("pat"))
        site = projects.enrol_site(session, get("pat"), project, "A", contact_email="a@trial.example", ae_titles=["EDGE-A"])
        projects.enrol_site(session, get("pat"), project, "B", ae_titles=["EDGE-B"])
        projects.set_member(session, get("pat"), project, get("rita"), ProjectRole.RESEARCHER)
        projects.set_member(session, get("pat"), project, get("cora"), ProjectRole.COORDINATOR)
        projects.set_member(session, get("pat"), project, get("ulla"), ProjectRole.SITE_UPLOADER, site)
        projects.define_time_point(session, get("pat"), project, "baseline", label="Baseline",
                                   expected_series=[{"modality": "CT", "description": "*chest*"}])
        projects.define_time_point(session, get("pat"), project, "FU1", label="Follow-up 1", day=90, window_days=30)
        return project.id


def case_of(casebank, outcome) -> Case:
    with casebank.database.session() as session:
        case = session.get_one(Case, outcome.case_id)
        session.expunge(case)
        return case


def folder_kind(casebank, case_id: int) -> tuple[FolderKind, int | None]:
    with casebank.database.session() as session:
        folder = session.get_one(Case, case_id).folder
        return folder.kind, folder.project_id


def test_project_folders_answer_to_membership_only(casebank, lung):
    with casebank.database.session() as session:
        get = lambda name: users.get_user(session, name)  # noqa: E731
        project = projects.get_project(session, get("pat"), "lung")
        found = projects.folders_of(session, project)
        collection, hold = found.collection, found.hold
        assert folders.rights_on(session, get("root"), collection) == folders.NO_RIGHTS  # admins manage, not see
        assert folders.rights_on(session, get("olga"), collection) == folders.NO_RIGHTS
        assert folders.rights_on(session, get("rita"), collection) == folders.Rights(view=True)
        assert folders.rights_on(session, get("ulla"), collection) == folders.Rights(send=True)
        assert folders.rights_on(session, get("cora"), collection) == folders.ALL_RIGHTS
        assert folders.rights_on(session, get("rita"), hold) == folders.NO_RIGHTS  # held: coordinators only
        assert folders.rights_on(session, get("cora"), hold).view
        sub = folders.create_folder(session, get("pat"), "Readers", parent=collection)
        assert sub.project_id == project.id and not folders.rights_on(session, get("root"), sub).view
        with pytest.raises(NotFound):
            projects.get_project(session, get("olga"), "lung")
        with pytest.raises(NotPermitted):
            projects.set_member(session, get("rita"), project, get("olga"), ProjectRole.VIEWER)
        with pytest.raises(NotPermitted):
            projects.create_project(session, get("pat"), "liver", protocol_id="LIVER-01")
        assert [p.name for p, _ in projects.projects_of(session, get("olga"))] == []


def test_an_enrolled_edge_files_into_the_project_and_qc_passes(casebank, lung):
    [*_, manifest] = send(casebank, research_export("CB-SUBJECT1"))
    assert folder_kind(casebank, manifest.case_id) == (FolderKind.PROJECT, lung)
    with casebank.database.session() as session:
        entry = session.scalars(select(TrialSubmission)).one()
        assert entry.state is QcState.PASSED and entry.subject.subject_id == "CB-SUBJECT1"
        assert session.get_one(Case, manifest.case_id).title == "CB-SUBJECT1 · Baseline"


@pytest.mark.parametrize("attack, reason", [
    ({"protocol": "NOPE-99"}, "no project has Clinical Trial Protocol ID NOPE-99"),
    ({"project": "liver", "protocol": ""}, "names project liver"),
])
def test_an_export_no_project_claims_waits_for_an_admin_never_in_a_teaching_folder(casebank, lung, attack, reason):
    [*_, manifest] = send(casebank, research_export("CB-X", **attack))
    kind, project_id = folder_kind(casebank, manifest.case_id)
    assert (kind, project_id) == (FolderKind.HOLD, None)
    with casebank.database.session() as session:
        case = session.get_one(Case, manifest.case_id)
        assert reason in case.notice
        assert folders.rights_on(session, users.get_user(session, "root"), case.folder).view
        assert not folders.rights_on(session, users.get_user(session, "cora"), case.folder).view


@pytest.mark.parametrize("attack, reason", [
    ({"site": "B"}, "EDGE-A is not enrolled to send for site B"),  # lies about its site
    ({"site": "Z"}, "site Z is not enrolled in project lung"),
])
def test_a_site_that_may_not_send_for_what_it_claims_is_held_for_the_coordinators(casebank, lung, attack, reason):
    [*_, manifest] = send(casebank, research_export("CB-Y", **attack))
    assert folder_kind(casebank, manifest.case_id) == (FolderKind.HOLD, lung)
    with casebank.database.session() as session:
        assert reason in session.get_one(Case, manifest.case_id).notice
        assert session.scalars(select(TrialSubmission)).all() == []
        cora, rita = users.get_user(session, "cora"), users.get_user(session, "rita")
        project = projects.get_project(session, cora, "lung")
        assert [c.id for c in trials.held_cases(session, cora, project)] == [manifest.case_id]
        with pytest.raises(NotPermitted):
            trials.held_cases(session, rita, project)


def test_a_subject_of_one_site_sent_by_another_is_held(casebank, lung):
    send(casebank, research_export("CB-SUBJ"))
    [*_, manifest] = send(casebank, research_export("CB-SUBJ", site="B", time_point="FU1", study_date="20250415"),
                          calling_ae="EDGE-B")
    assert folder_kind(casebank, manifest.case_id) == (FolderKind.HOLD, lung)
    assert "subject CB-SUBJ is enrolled at site A" in case_of(casebank, manifest).notice


def test_a_teaching_sender_reusing_a_project_study_uid_cannot_add_to_it(casebank, lung, make_user):
    [first, *_] = send(casebank, research_export("CB-VICTIM"))
    with casebank.database.session() as session:
        victim = session.get_one(Case, first.case_id)
        study_uid, victim_instances = victim.studies[0].study_instance_uid, victim.studies[0].series[0].instances
        victim_count = len(victim_instances)
        olga = users.get_user(session, "olga")
        users.bind_ae(session, "OLGA-WS", olga)
    intruder = dicom_data.study(["CT_small.dcm"])
    intruder[0].StudyInstanceUID = study_uid
    register_ae(casebank, "OLGA-WS", "user", host="127.0.0.1")
    [outcome] = send(casebank, intruder, calling_ae="OLGA-WS")
    assert outcome.case_id != first.case_id
    assert folder_kind(casebank, outcome.case_id) == (FolderKind.PERSONAL, None)
    with casebank.database.session() as session:
        victim = session.get_one(Case, first.case_id)
        assert len(victim.studies) == 1 and len(victim.studies[0].series[0].instances) == victim_count
        assert victim.folder.project_id == lung


def test_qc_checks_the_expected_series_time_point_and_shifted_timeline(casebank, lung):
    send(casebank, research_export("CB-T1", study_date="20250110"))
    send(casebank, research_export("CB-T1", time_point="FU1", study_date="20250101"))  # before baseline
    send(casebank, research_export("CB-T2", series=(("MR", "MR brain"),)))  # no CT chest
    send(casebank, research_export("CB-T3", time_point="week-2"))  # not in the protocol
    send(casebank, research_export("CB-T4", shifted=False))  # real dates where the project wants them shifted
    send(casebank, research_export("CB-T5", time_point="FU1", study_date="20250110"))
    send(casebank, research_export("CB-T5", study_date="20241001"))  # FU1 is 101 days after: 90 ± 30 holds
    send(casebank, research_export("CB-T6", study_date="20250101"))
    send(casebank, research_export("CB-T6", time_point="FU1", study_date="20250901"))  # 243 days: outside the window
    with casebank.database.session() as session:
        reasons = {(e.subject.subject_id, e.time_point_code): (e.state, " ".join(e.reasons))
                   for e in session.scalars(select(TrialSubmission))}
    assert reasons[("CB-T1", "baseline")][0] is QcState.PASSED
    assert "is before Baseline's (2025-01-10)" in reasons[("CB-T1", "FU1")][1]
    assert "expected series missing: CT with description '*chest*'" in reasons[("CB-T2", "baseline")][1]
    assert "time point week-2 is not defined by the protocol (defined: baseline, FU1)" in reasons[("CB-T3", "week-2")][1]
    assert "dates were not shifted" in reasons[("CB-T4", "baseline")][1]
    assert reasons[("CB-T5", "FU1")][0] is QcState.PASSED and reasons[("CB-T5", "baseline")][0] is QcState.PASSED
    assert "243 days after Baseline; the protocol expects 90 ± 30" in reasons[("CB-T6", "FU1")][1]


def test_a_coordinator_decides_qc_a_researcher_may_not(casebank, lung):
    send(casebank, research_export("CB-Q", series=(("MR", "MR brain"),)))
    with casebank.database.session() as session:
        cora, rita = users.get_user(session, "cora"), users.get_user(session, "rita")
        project = projects.get_project(session, cora, "lung")
        entry = session.scalars(select(TrialSubmission)).one()
        with pytest.raises(NotPermitted):
            trials.decide(session, rita, project, entry.id, True)
        decided = trials.decide(session, cora, project, entry.id, True)
        assert decided.state is QcState.PASSED and decided.decided_by == "cora"


def test_the_door_check_holds_a_subject_id_that_is_not_the_pseudonym(casebank, lung):
    objects = research_export("CB-REAL")
    objects[0].ClinicalTrialSubjectID = "9434765919"
    send(casebank, objects)
    with casebank.database.session() as session:
        [held] = session.scalars(select(QuarantinedObject)).all()
        assert any("Clinical Trial Subject ID" in r for r in held.reasons)


def test_research_cases_cannot_be_copied_into_teaching(casebank, lung):
    [first, *_] = send(casebank, research_export("CB-COPY"))
    with casebank.database.session() as session:
        pat = users.get_user(session, "pat")
        with pytest.raises(NotPermitted, match="stay in their project"):
            copy_case(session, casebank.blobs, pat, first.case_id, folders.personal_folder(session, pat).id)


def test_a_live_cohort_grows_its_frozen_version_does_not_and_the_diff_lists_the_new_case(casebank, lung, client):
    send(casebank, research_export("CB-C1"))
    send(casebank, research_export("CB-C2"))
    send(casebank, research_export("CB-C3", series=(("MR", "MR brain"),)))  # not CT: outside the cohort
    login(client, "rita")
    made = client.post("/api/cohorts", json={"name": "CT baselines", "project": "lung", "filters": ["modality:CT"]})
    assert made.status_code == 201, made.text
    cohort = made.json()
    assert len(cohort["live_case_ids"]) == 2
    frozen = client.post(f"/api/cohorts/{cohort['id']}/versions", json={"note": "for the abstract"}).json()
    assert frozen["number"] == 1 and sorted(frozen["case_ids"]) == sorted(cohort["live_case_ids"])
    assert frozen["instances"] == 4  # per case: the CT image and the export's KOS manifest

    [new, *_] = send(casebank, research_export("CB-C4"))  # a case arrives after freezing
    live = client.get(f"/api/cohorts/{cohort['id']}").json()
    assert new.case_id in live["live_case_ids"] and len(live["live_case_ids"]) == 3
    assert client.get(f"/api/cohorts/{cohort['id']}/versions/1").json()["case_ids"] == frozen["case_ids"]
    change = client.get(f"/api/cohorts/{cohort['id']}/diff", params={"from": 1, "to": "live"}).json()
    assert [e["case_id"] for e in change["added"]] == [new.case_id] and change["removed"] == []
    second = client.post(f"/api/cohorts/{cohort['id']}/versions", json={}).json()
    change = client.get(f"/api/cohorts/{cohort['id']}/diff", params={"from": 1, "to": second["number"]}).json()
    assert [e["case_id"] for e in change["added"]] == [new.case_id]

    with casebank.database.session() as session:  # a frozen version never changes
        version = session.scalars(select(CohortVersion).where(CohortVersion.number == 1)).one()
        version.entries = []
        with pytest.raises(cohorts.CohortVersionIsFrozen):
            session.flush()
        session.rollback()

    login(client, "olga")  # not a member: the cohort does not exist for her
    assert client.get(f"/api/cohorts/{cohort['id']}").status_code == 404
    assert client.get(f"/api/cohorts/{cohort['id']}/versions/1").status_code == 404
    assert client.post("/api/cohorts", json={"name": "x", "project": "lung"}).status_code == 404
