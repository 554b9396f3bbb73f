"""Real PACS peers send to the archive: Orthanc (Debian package) and dcmtk's storescu."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests
from sqlalchemy import func, select

from archive import folders, users
from archive.models import Case, Instance

from .. import dicom_data
from ..peers import orthanc

STORESCU = "/usr/bin/storescu"  # dcmtk's, not pynetdicom's console script of the same name

pytestmark = pytest.mark.peers


def token_for(casebank, username):
    with casebank.database.session() as session:
        return users.issue_token(session, users.get_user(session, username))


def search(live, token, q):
    response = requests.get(f"{live.url}/api/search", params={"q": q}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    return response.json()


def test_orthanc_sends_a_study_that_is_found_in_the_mapped_users_personal_folder(
    casebank, live, make_user, tmp_path
):
    make_user("alice"), make_user("bob")
    with casebank.database.session() as session:
        users.bind_ae(session, "ORTHANC", users.get_user(session, "alice"))
    datasets = dicom_data.study(["CT_small.dcm", "MR_small.dcm"], description="Pneumoperitoneum teaching study")
    paths = dicom_data.write(datasets, tmp_path / "study")
    modalities = {"casebank": [live.ae_title, "127.0.0.1", live.dicom_port]}
    with orthanc(modalities, tmp_path / "orthanc") as pacs:
        study_ids = {
            requests.post(f"{pacs}/instances", data=p.read_bytes(), timeout=10).json()["ParentStudy"]
            for p in paths
        }
        assert len(study_ids) == 1
        reply = requests.post(f"{pacs}/modalities/casebank/store", json=list(study_ids), timeout=60).json()
    assert reply["InstancesCount"] == 2 and reply["FailedInstancesCount"] == 0

    result = search(live, token_for(casebank, "alice"), "pneumoperitoneum")
    assert result["total"] == 1
    [hit] = result["hits"]
    assert hit["title"] == "Pneumoperitoneum teaching study"
    assert hit["folder"]["path"] == "/alice"
    with casebank.database.session() as session:
        case = session.get(Case, hit["case_id"])
        assert case.folder_id == folders.personal_folder(session, users.get_user(session, "alice")).id
        assert {i.sop_instance_uid for s in case.studies[0].series for i in s.instances} == {
            str(ds.SOPInstanceUID) for ds in datasets
        }
    assert search(live, token_for(casebank, "bob"), "pneumoperitoneum")["total"] == 0


def test_storescu_twice_stores_each_instance_once(casebank, live, make_user, tmp_path):
    make_user("alice")
    with casebank.database.session() as session:
        users.bind_ae(session, "DCMTK", users.get_user(session, "alice"))
    datasets = dicom_data.study(["CT_small.dcm", "MR_small.dcm", "rtdose_1frame.dcm"], description="Sent by storescu")
    folder = tmp_path / "study"
    dicom_data.write(datasets, folder)
    command = [STORESCU, "-aet", "DCMTK", "-aec", live.ae_title, "+sd", "127.0.0.1", str(live.dicom_port), str(folder)]
    env = {**os.environ, "TCP_NODELAY": "1"}
    for _ in range(2):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
    with casebank.database.session() as session:
        assert session.scalar(select(func.count(Case.id))) == 1
        assert session.scalar(select(func.count(Instance.id))) == 3
        stored = set(session.scalars(select(Instance.sop_instance_uid)))
    assert stored == {str(ds.SOPInstanceUID) for ds in datasets}
    assert sum(1 for p in (casebank.blobs.root / "sha256").rglob("*") if p.is_file()) == 3
    assert search(live, token_for(casebank, "alice"), "storescu")["total"] == 1


def test_storescu_sees_the_failure_status_of_a_refused_object(casebank, live, make_user, tmp_path):
    ds = dicom_data.study(["CT_small.dcm"])[0]
    del ds.SeriesInstanceUID
    [path] = dicom_data.write([ds], tmp_path / "bad")
    done = subprocess.run(
        [STORESCU, "-d", "-aet", "DCMTK", "-aec", live.ae_title, "127.0.0.1", str(live.dicom_port), str(path)],
        capture_output=True, text=True, env={**os.environ, "TCP_NODELAY": "1"}, timeout=60,
    )
    report = done.stdout + done.stderr
    assert "0xc000: Error: Cannot understand" in report, report
    assert "ErrorComment" in report and "missing SeriesInstanceUID" in report, report
    with casebank.database.session() as session:
        assert session.scalar(select(func.count(Instance.id))) == 0
