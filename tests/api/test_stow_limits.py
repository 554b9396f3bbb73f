"""STOW-RS and QIDO-RS limits (issue 10): a streamed, size-limited STOW body, per-object limits,
QIDO paging bounds, links never built from the Host header, and temp blobs swept at start."""

from __future__ import annotations

import http.client
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests
from pydicom.dataset import Dataset
from sqlalchemy import func, select

from api.runtime import Casebank
from api.settings import Settings
from archive import users
from archive.blobs import temp_prefix
from archive.models import Instance
from ingest.stow import PartSpooler

from .. import dicom_data
from ..ingest.test_dicom_door import big_image
from ..peers import LiveServer

BOUNDARY = "casebank-limits"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
MiB = 1 << 20
LiveFactory = Callable[..., LiveServer]


@pytest.fixture
def live_with(settings: Settings) -> Iterator[LiveFactory]:
    """A live archive (HTTP and DICOM on loopback) whose settings differ as given."""
    running: list[tuple[Casebank, LiveServer]] = []

    def start(**overrides: object) -> LiveServer:
        cb = Casebank.open(settings.model_copy(update=overrides))
        server = LiveServer(cb).__enter__()
        running.append((cb, server))
        return server

    yield start
    for cb, server in running:
        server.__exit__(None, None, None)
        cb.close()


def token_for(cb: Casebank, name: str = "alice") -> dict[str, str]:
    with cb.database.session() as session:
        user = users.add_user(session, name, email=f"{name}@hospital.example", gmc="7100001",
                              display_name="Dr Alice", password="a-long-uncommon-test-passphrase-41").user
        return {"Authorization": f"Bearer {users.issue_token(session, user)}"}


def encoded(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def multipart(*parts: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    return b"".join(head + part + b"\r\n" for part in parts) + f"--{BOUNDARY}--\r\n".encode()


def instances(cb: Casebank) -> int:
    with cb.database.session() as session:
        return int(session.scalar(select(func.count(Instance.id))) or 0)


def value(item: dict, tag: str) -> object:  # type: ignore[type-arg]
    return item[tag]["Value"][0]


# --- the body ---------------------------------------------------------------------------------------

def peak_rss_since_reset() -> Callable[[], int]:
    """Resets the kernel's peak-RSS mark of this process; the returned function reads it (bytes)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

    def peak() -> int:
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    return peak


def test_a_stow_body_over_the_limit_is_413_and_is_never_held_in_memory(live_with):
    limit = 128 * MiB
    live = live_with(max_stow_bytes=limit)
    auth = token_for(live.casebank)
    [ds] = dicom_data.study(["CT_small.dcm"])
    chunk = b"\0" * MiB

    def body() -> Iterator[bytes]:  # chunked, no Content-Length, like Orthanc's STOW client
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + encoded(ds)
        for _ in range(200):
            yield chunk

    before = peak_rss_since_reset()
    start_rss = before()
    try:
        response = httpx.post(f"{live.url}/dicomweb/studies", content=body(), timeout=60,
                              headers={**auth, "Content-Type": CONTENT_TYPE})
        status, problem = response.status_code, response.json()
    except httpx.HTTPError as exc:  # the archive may close while the client still writes
        pytest.fail(f"no 413 answer reached the client: {exc!r}")
    growth = before() - start_rss
    print(f"peak RSS growth while refusing a {200} MiB STOW body (limit {limit // MiB} MiB): {growth / MiB:.1f} MiB")
    assert status == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "CASEBANK_MAX_STOW_BYTES" in problem["detail"]
    assert growth < 48 * MiB, f"the process grew by {growth / MiB:.0f} MiB: the body was buffered"
    assert instances(live.casebank) == 0
    assert list(live.casebank.blobs.tmp_dir.iterdir()) == [], "the spooled parts were not removed"


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(live_with):
    live = live_with(max_stow_bytes=4 * MiB)
    auth = token_for(live.casebank)
    with socket.create_connection(("127.0.0.1", live.http_port), timeout=10) as s:
        s.sendall((f"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nAuthorization: {auth['Authorization']}\r\n"
                   f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {64 << 30}\r\n\r\n").encode())
        answer = http.client.HTTPResponse(s)  # not a byte of the 64 GiB is sent
        answer.begin()
        body = answer.read().decode()
    assert answer.status == 413
    assert answer.getheader("content-type") == "application/problem+json" and "CASEBANK_MAX_STOW_BYTES" in body


def test_an_object_over_the_object_limit_is_a_failed_sop_item(live_with):
    live = live_with(max_object_bytes=2 * MiB)
    auth = token_for(live.casebank)
    [small] = dicom_data.study(["CT_small.dcm"])
    big = big_image(4)
    response = requests.post(f"{live.url}/dicomweb/studies", data=multipart(encoded(small), encoded(big)),
                             headers={**auth, "Content-Type": CONTENT_TYPE}, timeout=30)
    assert response.status_code == 202, response.text
    report = response.json()
    [failed] = report["00081198"]["Value"]
    assert value(failed, "00081155") == str(big.SOPInstanceUID)
    assert value(failed, "00081197") == 0xA700
    assert [value(i, "00081155") for i in report["00081199"]["Value"]] == [str(small.SOPInstanceUID)]
    assert instances(live.casebank) == 1
    assert list(live.casebank.blobs.tmp_dir.iterdir()) == []


def test_a_chunked_body_in_tiny_pieces_is_stored(live_with):
    live = live_with()
    auth = token_for(live.casebank)
    studies = dicom_data.study(["CT_small.dcm", "MR_small.dcm"])
    body = multipart(*map(encoded, studies))

    def pieces() -> Iterator[bytes]:  # every delimiter is split across chunks somewhere
        for at in range(0, len(body), 7):
            yield body[at:at + 7]

    response = httpx.post(f"{live.url}/dicomweb/studies", content=pieces(), timeout=60,
                          headers={**auth, "Content-Type": CONTENT_TYPE})
    assert response.status_code == 200, response.text
    assert len(response.json()["00081199"]["Value"]) == 2
    assert instances(live.casebank) == 2


def test_the_splitter_ignores_preamble_and_epilogue_and_keeps_boundary_lookalikes(tmp_path):
    content = [b"first\r\n--casebank-limit not yet", b"", b"x--casebank-limits\r\n-"]
    body = (b"a preamble\r\n" + b"".join(f"--{BOUNDARY}\r\n\r\n".encode() + c + b"\r\n" for c in content)
            + f"--{BOUNDARY}--\r\nan epilogue".encode())
    spooler = PartSpooler(BOUNDARY, tmp_path, max_part_bytes=MiB, max_total_bytes=MiB)
    for at in range(len(body)):
        spooler.feed(body[at:at + 1])
    assert [p.read() for p in spooler.finish()] == content
    spooler.discard()
    assert list(tmp_path.iterdir()) == []


# --- QIDO paging and the links the archive hands out ---------------------------------------------

@pytest.mark.parametrize("param", ["limit=9223372036854775808", "offset=9223372036854775808",
                                   "limit=10001", "limit=-1", "limit=%C2%B2"])
def test_qido_paging_out_of_range_is_400_not_500(live_with, param):
    live = live_with()
    auth = token_for(live.casebank)
    response = requests.get(f"{live.url}/dicomweb/studies?{param}", headers=auth, timeout=10)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "must be an integer from 0 to" in response.json()["detail"]


def stored_and_searched(live: LiveServer, headers: dict[str, str]) -> tuple[str, str]:
    """(RetrieveURL of a STOW answer, RetrieveURL of a QIDO study) with the given headers."""
    [ds] = dicom_data.study(["CT_small.dcm"])
    stow = requests.post(f"{live.url}/dicomweb/studies", data=multipart(encoded(ds)), timeout=20,
                         headers={**headers, "Content-Type": CONTENT_TYPE})
    assert stow.status_code == 200, stow.text
    qido = requests.get(f"{live.url}/dicomweb/studies", headers=headers, timeout=10)
    assert qido.status_code == 200, qido.text
    return value(stow.json()["00081199"]["Value"][0], "00081190"), value(qido.json()[0], "00081190")  # type: ignore[return-value]


def test_links_are_not_built_from_the_host_header(live_with):
    live = live_with()
    stow_url, qido_url = stored_and_searched(live, {**token_for(live.casebank), "Host": "evil.example"})
    assert "evil.example" not in stow_url + qido_url
    assert stow_url.startswith(f"{live.url}/dicomweb/studies/")
    assert qido_url.startswith(f"{live.url}/dicomweb/studies/")


def test_links_use_the_base_url_when_configured(live_with):
    live = live_with(base_url="https://casebank.hospital.example/")
    stow_url, qido_url = stored_and_searched(live, {**token_for(live.casebank), "Host": "evil.example"})
    assert stow_url.startswith("https://casebank.hospital.example/dicomweb/studies/")
    assert qido_url.startswith("https://casebank.hospital.example/dicomweb/studies/")


# --- temp blobs ---------------------------------------------------------------------------------

def test_abandoned_temp_blobs_are_swept_when_the_archive_opens(settings):
    Casebank.open(settings).close()
    tmp = settings.data / "blobs" / "tmp"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    host = socket.gethostname()
    files = {
        "killed": tmp / f"{host}~{dead.stdout.strip()}~abc",  # its writer is gone
        "old": tmp / "otherhost~123~def",  # another host's, but older than an hour
        "fresh": tmp / "otherhost~456~ghi",  # another host's writer may still be at it
        "ours": tmp / f"{temp_prefix()}jkl",  # this process is alive
    }
    for path in files.values():
        path.write_bytes(b"partial blob")
    two_hours_ago = time.time() - 7200
    os.utime(files["old"], (two_hours_ago, two_hours_ago))
    Casebank.open(settings).close()
    assert sorted(p.name for p in tmp.iterdir()) == sorted([files["fresh"].name, files["ours"].name])
