"""TCE exports from real peers: Orthanc (Debian's PACS), dcmtk storescu, dicomweb-client (STOW-RS), and
the mail a folder owner gets from an aiosmtpd server when a folder crosses its limit."""

from __future__ import annotations

import io
import os
import random
import subprocess
import time

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from sqlalchemy import select

from api.runtime import Casebank
from archive import folders, users
from archive.models import Case, FolderKind, Instance

from .. import dicom_data
from ..senders import register_ae
from ..peers import LiveServer, orthanc, smtp_server
from .test_tce_receiver import assert_full_teaching_text, export, send

STORESCU = "/usr/bin/storescu"

pytestmark = pytest.mark.peers


def bearer(casebank, username):
    with casebank.database.session() as session:
        return {"Authorization": f"Bearer {users.issue_token(session, users.get_user(session, username))}"}


def only_case(live, headers):
    hits = requests.get(f"{live.url}/api/search", params={"q": ""}, headers=headers, timeout=10).json()["hits"]
    assert len(hits) == 1, hits
    return requests.get(f"{live.url}/api/cases/{hits[0]['case_id']}", headers=headers, timeout=10).json()


@pytest.mark.parametrize("routing", ["author GMC", "called AE"])
def test_orthanc_sends_a_tce_export_that_lands_in_the_intended_folder(casebank, live, make_user, tmp_path, routing):
    alice, admin = make_user("alice"), make_user("root", admin=True)
    called_ae = live.ae_title
    if routing == "called AE":
        called_ae = "TEACHING"
        with casebank.database.session() as session:
            shared = folders.create_folder(session, admin, "Teaching", FolderKind.SHARED)
            folders.grant(session, admin, shared, alice, view=True, send=True)
            users.bind_called_ae(session, called_ae, shared)
    register_ae(casebank, "ORTHANC", "pacs", host="127.0.0.1")  # a PACS trusted to sign for its users
    images, report, manifest = export()
    paths = dicom_data.write([*images, report, manifest], tmp_path / "export")
    with orthanc({"archive": [called_ae, "127.0.0.1", live.dicom_port]}, tmp_path / "orthanc") as pacs:
        ids = [requests.post(f"{pacs}/instances", data=p.read_bytes(), timeout=10).json()["ID"] for p in paths]
        reply = requests.post(f"{pacs}/modalities/archive/store", json=ids, timeout=60).json()
    assert reply["InstancesCount"] == 5 and reply["FailedInstancesCount"] == 0
    case = only_case(live, bearer(casebank, "alice"))
    assert case["folder"]["path"] == ("/Teaching" if routing == "called AE" else "/alice")
    assert_full_teaching_text(case)


@pytest.mark.parametrize("transport", ["storescu, shuffled, two associations", "STOW-RS with dicomweb-client"])
def test_the_same_export_over_either_transport_gives_the_same_case(casebank, live, make_user, tmp_path, transport):
    make_user("alice")
    images, report, manifest = export()
    objects = [*images, report, manifest]
    if transport.startswith("storescu"):
        register_ae(casebank, "SITEPACS", "pacs", host="127.0.0.1")
        random.Random(3).shuffle(objects)
        paths = dicom_data.write(objects, tmp_path / "export")
        env = {**os.environ, "TCP_NODELAY": "1"}
        for part in (paths[:2], paths[2:]):
            done = subprocess.run(
                [STORESCU, "-aet", "SITEPACS", "-aec", live.ae_title, "127.0.0.1", str(live.dicom_port), *map(str, part)],
                capture_output=True, text=True, env=env, timeout=60,
            )
            assert done.returncode == 0, done.stderr
    else:
        client = DICOMwebClient(url=f"{live.url}/dicomweb", headers=bearer(casebank, "alice"))
        report_json = client.store_instances(objects)
        assert len(report_json.ReferencedSOPSequence) == 5
        assert "FailedSOPSequence" not in report_json
    case = only_case(live, bearer(casebank, "alice"))
    assert case["folder"]["path"] == "/alice"
    assert_full_teaching_text(case)


def test_stow_reports_a_failure_entry_for_a_bad_part_and_stores_the_rest(casebank, live, make_user):
    make_user("alice")
    good, bad = dicom_data.study(["CT_small.dcm", "MR_small.dcm"])
    del bad.SeriesInstanceUID
    client = DICOMwebClient(url=f"{live.url}/dicomweb", headers=bearer(casebank, "alice"))
    stored_report = client.store_instances([good, bad])  # HTTP 202: partly stored
    assert [i.ReferencedSOPInstanceUID for i in stored_report.ReferencedSOPSequence] == [good.SOPInstanceUID]
    [failed] = stored_report.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == bad.SOPInstanceUID and failed.FailureReason == 0xC000
    with casebank.database.session() as session:
        assert len(session.scalars(select(Case)).all()) == 1


def test_stow_refuses_a_body_that_is_not_multipart(casebank, live, make_user):
    make_user("alice")
    response = requests.post(
        f"{live.url}/dicomweb/studies", data=b"hello", timeout=10,
        headers={**bearer(casebank, "alice"), "Content-Type": "application/dicom"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "multipart/related" in response.json()["detail"]


def test_crossing_a_folder_limit_mails_the_owner_exactly_once(settings, make_user, casebank):
    with smtp_server() as inbox:
        alice = make_user("alice")
        with casebank.database.session() as session:
            home = folders.personal_folder(session, alice)
            home.storage_limit_bytes = 60_000  # two CT_small objects cross it
            users.bind_ae(session, "PACS1", session.merge(alice))
        casebank.close()
        mailing = Casebank.open(settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{inbox.port}"}))
        with LiveServer(mailing) as live:
            for ds in dicom_data.study(["CT_small.dcm"] * 4):
                assert send(live, [ds])[0].Status == 0
        deadline = time.monotonic() + 5
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a second, wrong mail would arrive by now
        assert len(inbox.messages) == 1
        [mail] = inbox.messages
        assert mail.rcpt_tos == ["alice@hospital.example"]
        text = mail.content.decode()
        assert "folder /alice is over its storage limit" in text
        assert "buy more storage" in text


def test_stow_refuses_unsupported_transfer_syntax_and_meta_mismatch(casebank, live, make_user):
    make_user("alice")
    odd_syntax, mismatched, fine = dicom_data.study(["CT_small.dcm", "CT_small.dcm", "CT_small.dcm"])
    odd_syntax.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.9.9.1"  # a private syntax nobody knows
    mismatched.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    parts = []
    for ds in (odd_syntax, mismatched, fine):
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=False, implicit_vr=False, little_endian=True)
        parts.append(buffer.getvalue())
    boundary = "casebank-test-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n" for part in parts
    ) + f"--{boundary}--\r\n".encode()
    response = requests.post(
        f"{live.url}/dicomweb/studies", data=body, timeout=20,
        headers={**bearer(casebank, "alice"),
                 "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    failed = {i["00081155"]["Value"][0]: i["00081197"]["Value"][0] for i in body["00081198"]["Value"]}
    assert failed == {str(odd_syntax.SOPInstanceUID): 0x0122, str(mismatched.SOPInstanceUID): 0xA900}
    assert [i["00081155"]["Value"][0] for i in body["00081199"]["Value"]] == [str(fine.SOPInstanceUID)]
    with casebank.database.session() as session:
        assert [i.sop_instance_uid for i in session.scalars(select(Instance))] == [str(fine.SOPInstanceUID)]
