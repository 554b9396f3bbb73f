"""Cohort export end to end: identified objects -> edge (project lung) -> archive -> a frozen cohort
version -> its zip, read back with pydicom's FileSet, dcmtk and fhir.resources, and scanned byte by
byte for every identifier the originals carried (patient, hospital and the teaching author)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import requests
from fhir.resources.bundle import Bundle
from pydicom.fileset import FileSet
from sqlalchemy import select

from archive import cohorts, users
from archive.models import AuditEvent, CohortVersion
from export.cohort_export import MEMBERS, export_version_to_path
from tests.ingest.test_research_projects import (
    bearer, custodian, identified, instances, lung_project, people, start_edge, store, wait_until,
)

from ..peers import LiveServer

pytestmark = pytest.mark.peers
__all__ = ["custodian", "people"]  # fixtures, imported for pytest

PATIENTS = (("9434765919", "Smith^John"), ("9434765920", "Jones^Mary"))
PLANTED = ("9434765919", "9434765920", "Smith", "John", "Jones^Mary", "ACC-765919", "ACC-765920",
           "St Elsewhere", "19600101", "20250310", "Other^Olga", "Olga")


@pytest.fixture
def exported(casebank, people, tmp_path, custodian):
    """Two subjects sent through one edge, a live cohort of both frozen as version 1, and the live
    server still running, so the test can fetch the export as rita would."""
    lung_project(casebank, {"A": ["EDGE-A"]})
    from ..senders import register_ae

    register_ae(casebank, "EDGE-A", "edge", host="127.0.0.1")
    with LiveServer(casebank) as live:
        edge = start_edge(tmp_path, live, "EDGE-A", "A", custodian[1])
        sent = 0
        try:
            for patient_id, name in PATIENTS:
                objects = identified(patient_id, name, "20250310", [("CT", "CT chest"), ("CT", "CT chest lung")],
                                     "baseline", report_gmc=people["olga"].gmc)
                store(edge.config.port, objects)
                sent += len(objects)
            wait_until(lambda: instances(casebank) == sent, what="both exports")
            rita = bearer(casebank, "rita")
            cohort = requests.post(f"{live.url}/api/cohorts", headers=rita, timeout=10,
                                   json={"name": "CT baselines", "project": "lung", "filters": ["modality:CT"]}).json()
            wait_until(lambda: len(requests.get(f"{live.url}/api/cohorts/{cohort['id']}", headers=rita,
                                                timeout=10).json()["live_case_ids"]) == 2, what="the index")
            frozen = requests.post(f"{live.url}/api/cohorts/{cohort['id']}/versions", headers=rita, timeout=10,
                                   json={"note": "abstract"}).json()
            # a third subject arrives after freezing: the version's export must not hold it
            late = identified("9434765921", "Late^Lucy", "20250310", [("CT", "CT chest")], "baseline")
            store(edge.config.port, late)
            sent += len(late)
            wait_until(lambda: instances(casebank) == sent, what="the late export")
        finally:
            edge.stop()
        yield live, cohort["id"], frozen


def frozen_entries(casebank, cohort_id: int) -> list[dict]:
    with casebank.database.session() as session:
        return session.scalars(select(CohortVersion).where(CohortVersion.cohort_id == cohort_id)).one().entries


def frozen_sop_uids(entries: list[dict]) -> set[str]:
    return {i[0] for e in entries for st in e["studies"] for se in st["series"] for i in se["instances"]}


def test_a_frozen_cohort_exports_exactly_its_instances_readable_by_pydicom_dcmtk_and_fhir_with_no_identifier(
    casebank, exported, tmp_path,
):
    live, cohort_id, frozen = exported
    answer = requests.get(f"{live.url}/api/cohorts/{cohort_id}/versions/1/export",
                          headers=bearer(casebank, "rita"), timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert 'filename="CT-baselines-v1.zip"' in answer.headers["content-disposition"]
    raw = answer.content
    out = tmp_path / "export"
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        names = zf.namelist()
        zf.extractall(out)
        members = {name: zf.read(name) for name in names}
    assert set(MEMBERS) <= set(names)

    entries = frozen_entries(casebank, cohort_id)
    expected = frozen_sop_uids(entries)
    assert len(entries) == 2 and len(expected) == frozen["instances"]

    # pydicom reads the file-set back: exactly the frozen instances, each file what was archived
    fs = FileSet(out / "DICOMDIR")
    assert {str(i.SOPInstanceUID) for i in fs} == expected
    assert len({str(i.PatientID) for i in fs}) == 2  # one patient record per subject (the pseudonym)
    for instance in fs:
        ds = instance.load()
        assert str(ds.SOPInstanceUID) == instance.SOPInstanceUID
        assert str(ds.ClinicalTrialProtocolID) == "LUNG-01"
    # dcmtk: a valid Part 10 file each, and a DICOMDIR it can dump
    files = [out / name for name in names if name not in MEMBERS[1:]]
    checked = subprocess.run(["dcmftest", *map(str, files)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and checked.stdout.count("yes:") == len(files), checked.stdout
    for path in files:
        dumped = subprocess.run(["dcmdump", "-q", str(path)], capture_output=True, text=True, check=False)
        assert dumped.returncode == 0 and not dumped.stderr, (path, dumped.stderr)
    directory = subprocess.run(["dcmdump", str(out / "DICOMDIR")], capture_output=True, text=True, check=True).stdout
    records = [line.split("[")[1].split("]")[0] for line in directory.splitlines() if "DirectoryRecordType" in line]
    # per subject: one study, the two CT series, the ATFI report and the KOS manifest
    assert sorted(records) == sorted(["PATIENT", "STUDY", "SERIES", "SERIES", "IMAGE", "IMAGE",
                                      "SERIES", "SR DOCUMENT", "SERIES", "KEY OBJECT DOC"] * 2)

    # the CSV: one row per case, the pseudonym and trial attributes, no author
    rows = list(csv.DictReader(io.StringIO(members["cohort.csv"].decode())))
    assert sorted(int(r["case_id"]) for r in rows) == sorted(e["case_id"] for e in entries)
    for row in rows:
        assert row["subject_id"].startswith("CB-") and row["protocol_id"] == "LUNG-01" and row["site_id"] == "A"
        assert row["time_point_id"] == "baseline" and set(row["modalities"].split("; ")) == {"CT", "SR", "KO"}
        assert row["series"] == "4" and row["instances"] == "4"
        assert row["diagnosis"] == "Adenocarcinoma"

    # the FHIR bundle validates and carries pseudonyms only
    bundle = Bundle.model_validate_json(members["fhir-bundle.json"])
    kinds = [e.resource.__resource_type__ for e in bundle.entry]
    assert kinds.count("Group") == 1 and kinds.count("Patient") == 2 and kinds.count("ImagingStudy") == 2
    assert kinds.count("Condition") == 2
    group = next(e.resource for e in bundle.entry if e.resource.__resource_type__ == "Group")
    assert group.quantity == 2
    for entry in bundle.entry:
        if entry.resource.__resource_type__ == "Patient":
            patient = json.loads(entry.resource.model_dump_json(exclude_none=True))
            assert set(patient) == {"resourceType", "identifier"}
            assert patient["identifier"][0]["value"] in {r["subject_id"] for r in rows}
    studies = [e.resource for e in bundle.entry if e.resource.__resource_type__ == "ImagingStudy"]
    assert sum(s.numberOfInstances for s in studies) == len(expected)

    # no original identifier in any byte: the zip as sent, and every member unpacked
    with casebank.database.session() as session:
        olga = users.get_user(session, "olga")
        planted = (*PLANTED, olga.gmc, olga.display_name)
    for name, data in [("the zip", raw), *members.items()]:
        for identifier in planted:
            assert identifier.encode() not in data, (identifier, name)

    with casebank.database.session() as session:
        [record] = session.scalars(select(AuditEvent).where(AuditEvent.action == "cohort.exported")).all()
        assert record.detail["instances"] == len(expected) and record.detail["version"] == 1


def test_the_export_job_reports_progress_and_only_its_starter_can_read_it(casebank, exported):
    live, cohort_id, frozen = exported
    rita, cora = bearer(casebank, "rita"), bearer(casebank, "cora")
    started = requests.post(f"{live.url}/api/cohorts/{cohort_id}/versions/1/exports", headers=rita, timeout=10)
    assert started.status_code == 202, started.text
    job = started.json()
    deadline = time.monotonic() + 60
    while (job := requests.get(live.url + job["status_url"], headers=rita, timeout=10).json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["state"] == "done" and job["done"] == job["total"] > frozen["instances"]
    assert requests.get(live.url + job["status_url"], headers=cora, timeout=10).status_code == 404  # not hers
    assert requests.get(live.url + job["download_url"], headers=cora, timeout=10).status_code == 404
    download = requests.get(live.url + job["download_url"], headers=rita, timeout=60)
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        assert {str(i.SOPInstanceUID) for i in _fileset(zf)} == frozen_sop_uids(frozen_entries(casebank, cohort_id))


def _fileset(zf: zipfile.ZipFile):  # type: ignore[no-untyped-def]
    import tempfile

    folder = Path(tempfile.mkdtemp())
    zf.extractall(folder)
    return list(FileSet(folder / "DICOMDIR"))


def test_nobody_else_can_export_or_fetch_the_fhir_study(casebank, exported):
    live, cohort_id, _ = exported
    for outsider in ("olga", "root"):  # root: an admin, no member
        headers = bearer(casebank, outsider)
        for method, path in (("GET", f"/api/cohorts/{cohort_id}/versions/1/export"),
                             ("POST", f"/api/cohorts/{cohort_id}/versions/1/exports"),
                             ("GET", f"/api/cohorts/{cohort_id}/versions/9/export")):
            answer = requests.request(method, live.url + path, headers=headers, timeout=10)
            assert answer.status_code == 404, (outsider, path, answer.status_code)
            assert answer.headers["content-type"].startswith("application/problem+json")
    with casebank.database.session() as session:
        study_id = frozen_entries(casebank, cohort_id)[0]["studies"][0]["study_instance_uid"]
        from archive.models import Study

        study = session.scalars(select(Study).where(Study.study_instance_uid == study_id)).one()
        study_id, subject = study.id, study.trial["subject_id"]
    member = requests.get(f"{live.url}/fhir/ImagingStudy/{study_id}", headers=bearer(casebank, "rita"), timeout=10)
    assert member.status_code == 200 and member.headers["content-type"].startswith("application/fhir+json")
    resource = json.loads(member.text)
    assert resource["resourceType"] == "ImagingStudy" and resource["subject"]["identifier"]["value"] == subject
    assert resource["identifier"][0]["value"].startswith("urn:oid:") and resource["numberOfSeries"] == 4
    for outsider in ("olga", "root"):
        assert requests.get(f"{live.url}/fhir/ImagingStudy/{study_id}", headers=bearer(casebank, outsider),
                            timeout=10).status_code == 404
    assert requests.get(f"{live.url}/fhir/ImagingStudy/999999", headers=bearer(casebank, "rita"), timeout=10).status_code == 404


def test_the_cli_writes_the_same_export_and_refuses_to_overwrite(casebank, exported, tmp_path):
    _, cohort_id, frozen = exported
    out = tmp_path / "cohort.zip"
    seen: list[tuple[int, int]] = []
    assert export_version_to_path(casebank, "rita", cohort_id, 1, out, lambda d, t: seen.append((d, t))) == out
    assert seen[-1][0] == seen[-1][1] and not (tmp_path / "cohort.zip.partial").exists()
    with zipfile.ZipFile(out) as zf:
        assert {str(i.SOPInstanceUID) for i in _fileset(zf)} == frozen_sop_uids(frozen_entries(casebank, cohort_id))
    from archive.errors import Conflict, NotFound

    with pytest.raises(Conflict, match="exists already"):
        export_version_to_path(casebank, "rita", cohort_id, 1, out)
    with pytest.raises(NotFound):
        export_version_to_path(casebank, "olga", cohort_id, 1, tmp_path / "other.zip")
    assert not (tmp_path / "other.zip").exists()
    with casebank.database.session() as session:
        assert cohorts.get_version(session, users.get_user(session, "rita"), cohort_id, 1).number == 1


def test_a_frozen_instance_whose_blob_is_gone_fails_the_export_naming_it(casebank, exported):
    live, cohort_id, _ = exported
    [entry, *_] = frozen_entries(casebank, cohort_id)
    sop_uid, _, sha256 = entry["studies"][0]["series"][0]["instances"][0][:3]
    casebank.blobs.path(sha256).unlink()
    rita = bearer(casebank, "rita")
    answer = requests.get(f"{live.url}/api/cohorts/{cohort_id}/versions/1/export", headers=rita, timeout=60)
    assert answer.status_code == 409 and answer.headers["content-type"].startswith("application/problem+json")
    assert sop_uid in answer.json()["detail"] and "missing" in answer.json()["detail"]
    job = requests.post(f"{live.url}/api/cohorts/{cohort_id}/versions/1/exports", headers=rita, timeout=10).json()
    deadline = time.monotonic() + 30
    while (job := requests.get(live.url + job["status_url"], headers=rita, timeout=10).json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["state"] == "failed" and sop_uid in job["error"] and job["download_url"] is None
