"""Durability of the DICOM receiver, checked against a real `casebank serve` subprocess.

The archive promises that a C-STORE is acknowledged only after the blob is fsynced and the
database row committed. These tests hold it to that from the outside: many OS processes sending
the same instances at once, and a SIGKILL in the middle of an association followed by a restart.
The archive's state is read straight from its SQLite file and blob folder, and through the REST
API with a bearer token.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import requests
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, build_context
from pynetdicom.sop_class import CTImageStorage

from ingest.tce.atfi import TeachingFileInfo

from .. import dicom_data
from ..peers import free_port, wait_for_port

CASEBANK = str(Path(sys.executable).with_name("casebank"))
STORESCU = "/usr/bin/storescu"  # dcmtk's, not pynetdicom's console script of the same name
CALLED_AE = "CASEBANK"
AUTHOR_GMC = "7000001"
TITLE = "Pneumatosis intestinalis in an adult"



# --- the archive as a subprocess -------------------------------------------------------------

def _clean_environment(**extra: str) -> dict[str, str]:
    """The test runner's environment without any CASEBANK_* setting that could redirect the archive."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBANK_")}
    env.update(extra)
    return env


class Serve:
    """`casebank serve` on fixed ports and a data folder; can be SIGKILLed and started again."""

    def __init__(self, data: Path, logs: Path, assembly_wait: int = 600) -> None:
        self.data = data
        self.logs = logs
        self.http_port = free_port()
        self.dicom_port = free_port()
        while self.dicom_port == self.http_port:
            self.dicom_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.env = _clean_environment(CASEBANK_ASSEMBLY_WAIT=str(assembly_wait))
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def log_path(self) -> Path:
        return self.logs / f"serve-{self.runs}.log"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, timeout: float = 30.0) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.runs += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [CASEBANK, "serve", "--data", str(self.data), "--http", f"127.0.0.1:{self.http_port}",
                 "--dicom-port", str(self.dicom_port)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"casebank serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"casebank serve did not answer within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)
        wait_for_port(self.dicom_port, timeout=max(1.0, deadline - time.monotonic()))

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def sigkill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Ends the process this object started (by its pid), politely first."""
        if not self.alive():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def get(self, path: str, token: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


@contextmanager
def serving(data: Path, logs: Path, **kwargs: int) -> Iterator[Serve]:
    server = Serve(data, logs, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def prepare_archive(data: Path, username: str, gmc: str, calling_aes: list[str], trusted_pacs: tuple[str, ...] = ()) -> str:
    """Creates a user, binds calling AE titles to them, registers `trusted_pacs` as PACS whose
    reports' authors are believed, and returns a bearer token.

    Does what `casebank user add`, `casebank ae bind` and `casebank token` do, through the same
    domain services but in this process: each CLI run costs seconds of start-up.
    """
    from api.runtime import Casebank
    from api.settings import Settings
    from archive import senders, users
    from archive.models import AeTrust

    settings = Settings(data=data, database_url=None, search_url=None, smtp_url=None, secret_key="durability-test")
    with Casebank.open(settings) as casebank, casebank.database.session() as session:
        user = users.add_user(
            session, username, email=f"{username}@hospital.example", gmc=gmc,
            display_name=f"Dr {username.title()}", password=f"pw-{username}-for-tests-only",
        ).user
        for ae_title in calling_aes:
            users.bind_ae(session, ae_title, user)
        for ae_title in trusted_pacs:
            senders.register_ae(session, ae_title, AeTrust.PACS, host="127.0.0.1")
        return users.issue_token(session, user)


# --- reading the archive's own storage -------------------------------------------------------

def query(data: Path, sql: str, *params: object) -> list[tuple]:
    """Reads the archive's SQLite database directly (WAL mode: committed rows are visible)."""
    uri = f"file:{data / 'casebank.sqlite3'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


def blob_path(data: Path, sha256: str) -> Path:
    return data / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256


def blob_files(data: Path) -> list[Path]:
    return [p for p in (data / "blobs" / "sha256").rglob("*") if p.is_file()]


def assert_blob_holds(data: Path, sha256: str, sop_instance_uid: str) -> None:
    path = blob_path(data, sha256)
    assert path.is_file(), f"blob {sha256} of {sop_instance_uid} is missing"
    content = path.read_bytes()
    assert hashlib.sha256(content).hexdigest() == sha256, f"blob {sha256} of {sop_instance_uid} is corrupt"
    assert str(dcmread(path).SOPInstanceUID) == sop_instance_uid


# --- 1. many processes, many associations, the same instances ------------------------------------

N_PROCESSES = 8
N_STUDIES = 3
PER_STUDY = 16
BLOCK = 6  # 48 instances in 8 blocks; process i sends blocks i..i+3, so every instance is sent 4 times


@pytest.mark.peers  # dcmtk's storescu
def test_eight_concurrent_associations_from_separate_processes_store_every_instance_once(tmp_path):
    data = tmp_path / "data"
    calling_aes = [f"MODALITY{i}" for i in range(1, N_PROCESSES + 1)]
    prepare_archive(data, "alice", AUTHOR_GMC, calling_aes)

    studies = [dicom_data.study(["CT_small.dcm"] * PER_STUDY, description=f"Concurrency {n}") for n in range(N_STUDIES)]
    # Interleave the studies, so that every block starts objects of every study: the first objects of
    # a study reach the archive on several associations at once.
    ordered = [studies[n % N_STUDIES][n // N_STUDIES] for n in range(N_STUDIES * PER_STUDY)]
    paths = dicom_data.write(ordered, tmp_path / "objects")
    assert len(paths) == N_PROCESSES * BLOCK
    expected_uids = {str(ds.SOPInstanceUID) for ds in ordered}

    subsets: list[list[Path]] = []
    for i in range(N_PROCESSES):
        blocks = {(i + k) % N_PROCESSES for k in range(4)}
        subsets.append([p for n, p in enumerate(paths) if n // BLOCK in blocks])  # in the global order
    sends = Counter(p for subset in subsets for p in subset)
    assert set(sends) == set(paths) and set(sends.values()) == {4}

    with serving(data, tmp_path / "logs") as server:
        server.start()
        env = {**os.environ, "TCP_NODELAY": "1"}
        senders: list[tuple[subprocess.Popen[bytes], Path, int]] = []
        try:
            for ae_title, subset in zip(calling_aes, subsets):
                out = tmp_path / "logs" / f"storescu-{ae_title}.log"
                with out.open("wb") as log:
                    command = [
                        STORESCU, "-v", "-aet", ae_title, "-aec", CALLED_AE,
                        "-to", "15", "-ta", "15", "-td", "30",
                        "127.0.0.1", str(server.dicom_port), *map(str, subset),
                    ]
                    senders.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), out, len(subset)))
            deadline = time.monotonic() + 45
            for process, out, _ in senders:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pytest.fail(f"storescu did not finish in time:\n{out.read_text(errors='replace')}")
        finally:
            for process, _, _ in senders:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)

        for (process, out, count), ae_title in zip(senders, calling_aes):
            report = out.read_text(errors="replace")
            assert process.returncode == 0, f"storescu {ae_title} exited {process.returncode}:\n{report}"
            assert report.count("Received Store Response (Success)") == count, report
        assert server.alive(), f"the archive died under load:\n{server.log_tail()}"

        per_uid = dict(query(data, "SELECT sop_instance_uid, COUNT(*) FROM instances GROUP BY sop_instance_uid"))
        assert set(per_uid) == expected_uids
        duplicated = {uid: n for uid, n in per_uid.items() if n != 1}
        assert not duplicated, f"stored more than once: {duplicated}"

        [(cases,)] = query(data, "SELECT COUNT(*) FROM cases")
        [(stored_studies, case_ids)] = query(data, "SELECT COUNT(*), COUNT(DISTINCT case_id) FROM studies")
        assert cases == stored_studies == case_ids == N_STUDIES
        for study in studies:
            [(count,)] = query(
                data,
                "SELECT COUNT(*) FROM instances i JOIN series s ON i.series_id = s.id "
                "JOIN studies st ON s.study_id = st.id WHERE st.study_instance_uid = ?",
                str(study[0].StudyInstanceUID),
            )
            assert count == PER_STUDY
        folders = query(data, "SELECT DISTINCT f.name FROM cases c JOIN folders f ON c.folder_id = f.id")
        assert folders == [("alice",)]  # every calling AE is bound to alice
        # The same bytes from another association are a duplicate, not a conflicting second version.
        assert query(data, "SELECT COUNT(*) FROM instance_conflicts") == [(0,)]
        assert query(data, "SELECT COUNT(*) FROM quarantine") == [(0,)]

        rows = query(data, "SELECT sop_instance_uid, blob_sha256 FROM instances")
        files = blob_files(data)
        assert len(files) == len(expected_uids), sorted(p.name for p in files)
        assert {p.name for p in files} == {sha for _, sha in rows}
        for uid, sha256 in rows:
            assert_blob_holds(data, sha256, uid)
        leftovers = [p.name for p in (data / "blobs" / "tmp").iterdir()]
        assert not leftovers, f"temporary blob files left behind: {leftovers}"


# --- 2. SIGKILL in the middle of an association, restart, resend ----------------------------------

N_IMAGES = 30
KILL_AFTER = N_IMAGES // 2

STORAGE_CONTEXTS = [
    build_context(CTImageStorage),
    build_context("1.2.840.10008.5.1.4.1.1.88.59"),  # Key Object Selection (the TCE manifest)
    build_context("1.2.840.10008.5.1.4.1.1.88.22"),  # Enhanced SR
    build_context("1.2.840.10008.5.1.4.1.1.88.33"),  # Comprehensive SR
    build_context("1.2.840.10008.5.1.4.1.1.88.11"),  # Basic Text SR
]


def teaching_info() -> TeachingFileInfo:
    return TeachingFileInfo(
        author_name="Jones^Ann^^Dr", author_gmc=AUTHOR_GMC, affiliation="St Elsewhere", contact="ann@nhs.example",
        abstract=TITLE, keywords=("pneumatosis", "bowel ischaemia"),
        history="Abdominal pain and distension", findings="Intramural gas in the small bowel",
        discussion="Benign and life-threatening causes must be separated",
        differential="Ischaemia; pseudopneumatosis", diagnosis="Pneumatosis intestinalis",
        diagnosis_confirmed=True, organ_system="Gastrointestinal", pathology="Ischaemia",
        category="Gastrointestinal", level="Intermediate",
    )


def associate(server: Serve, calling_ae: str):  # type: ignore[no-untyped-def]
    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = STORAGE_CONTEXTS
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 15
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=CALLED_AE)
    assert assoc.is_established, f"no association:\n{server.log_tail()}"
    return assoc


def send_until_killed(server: Serve, objects: list[Dataset], images: set[str]) -> tuple[list[str], str]:
    """Sends one object at a time and SIGKILLs the archive once KILL_AFTER images are acknowledged.

    The kill comes from another thread while this one carries on sending, so it lands in the
    middle of the association. Returns the SOP Instance UIDs answered with Success, in order, and
    how the association ended.
    """
    acknowledged: list[str] = []
    wake = threading.Event()
    kill = False  # set before `wake` when enough images are acknowledged

    def killer() -> None:
        wake.wait(timeout=60)
        if kill:
            server.sigkill()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    ended = "all sent"
    assoc = None
    try:
        assoc = associate(server, "EXPORTER")
        for ds in objects:
            try:
                response = assoc.send_c_store(ds)
            except Exception as exc:  # the association is gone
                ended = f"send raised {type(exc).__name__}: {exc}"
                break
            status = response.get("Status") if response is not None else None
            if status is None:  # no response: the connection dropped and the association aborted
                ended = "no response"
                break
            if status == 0x0000:
                acknowledged.append(str(ds.SOPInstanceUID))
                if not kill and len(images.intersection(acknowledged)) >= KILL_AFTER:
                    kill = True
                    wake.set()
            elif not kill:
                raise AssertionError(f"{ds.SOPInstanceUID} refused with {status:#06x}:\n{server.log_tail()}")
    finally:
        if assoc is not None and assoc.is_established:
            assoc.abort()
        wake.set()
        thread.join(timeout=10)
    return acknowledged, ended


def send_all(server: Serve, objects: list[Dataset]) -> list[int]:
    assoc = associate(server, "EXPORTER")
    try:
        return [int(assoc.send_c_store(ds).get("Status", -1)) for ds in objects]
    finally:
        assoc.release()


def test_sigkill_mid_send_loses_no_acknowledged_instance_and_a_resend_completes_the_case(tmp_path):
    data = tmp_path / "data"
    token = prepare_archive(data, "alice", AUTHOR_GMC, [], trusted_pacs=("EXPORTER",))
    images = dicom_data.study(["CT_small.dcm"] * N_IMAGES, description="CT abdomen")
    report, manifest = dicom_data.tce_export(images, teaching_info())
    objects = [manifest, report, *images]
    dicom_data.write(objects, tmp_path / "export")  # the export as a PACS would hold it on disk
    image_uids = {str(ds.SOPInstanceUID) for ds in images}
    study_uid = str(images[0].StudyInstanceUID)

    with serving(data, tmp_path / "logs", assembly_wait=600) as server:
        server.start()
        first_pid = server.pid
        acknowledged, ended = send_until_killed(server, objects, image_uids)
        assert server.process is not None
        assert server.process.wait(timeout=10) == -signal.SIGKILL, "the archive was not killed by the test"
        acked_images = image_uids.intersection(acknowledged)
        assert KILL_AFTER <= len(acked_images) < N_IMAGES, (
            f"the kill should land mid-send: {len(acked_images)} images acknowledged; {ended}"
        )
        assert acknowledged[:2] == [str(manifest.SOPInstanceUID), str(report.SOPInstanceUID)]
        assert ended != "all sent"

        server.start()  # the same data folder and ports
        assert server.pid != first_pid

        stored = dict(query(
            data, f"SELECT sop_instance_uid, blob_sha256 FROM instances WHERE sop_instance_uid IN "
            f"({','.join('?' * len(acknowledged))})", *acknowledged,
        ))
        lost = [uid for uid in acknowledged if uid not in stored]
        assert not lost, f"{len(lost)} acknowledged instance(s) lost by the SIGKILL: {lost}"
        for uid in acknowledged:
            assert_blob_holds(data, stored[uid], uid)
        [(case_id,)] = query(data, "SELECT case_id FROM studies WHERE study_instance_uid = ?", study_uid)
        # Still waiting (in the unclaimed inbox: the exporter's AE is bound to nobody) for the rest.
        [(status_before,)] = query(data, "SELECT status FROM cases WHERE id = ?", case_id)
        assert status_before.lower() == "pending", "a half-sent export must not look finished"

        assert send_all(server, objects) == [0] * len(objects), server.log_tail()

        response = server.get(f"/api/cases/{case_id}", token)
        assert response.status_code == 200, response.text
        case = response.json()
        assert case["status"] == "complete", case
        assert case["title"] == TITLE
        assert case["missing"] == []
        assert case["folder"]["path"] == "/alice"
        assert sum(s["instance_count"] for s in case["series"]) == N_IMAGES + 2  # images, report, manifest
        assert len(case["series"]) == N_IMAGES + 2  # every copy of CT_small is its own series

        per_uid = dict(query(data, "SELECT sop_instance_uid, COUNT(*) FROM instances GROUP BY sop_instance_uid"))
        assert per_uid == {str(ds.SOPInstanceUID): 1 for ds in objects}
        assert query(data, "SELECT COUNT(*) FROM cases") == [(1,)]
        assert query(data, "SELECT COUNT(*) FROM instance_conflicts") == [(0,)]
        for uid, sha256 in query(data, "SELECT sop_instance_uid, blob_sha256 FROM instances"):
            assert_blob_holds(data, sha256, uid)
        assert server.alive(), server.log_tail()
