"""The DICOM door (issue 10): bind address, association limits, idle timeout, object size limit,
UID and transfer-syntax checks, known-AEs-only and TLS, against real peers (pynetdicom, dcmtk)."""

from __future__ import annotations

import datetime
import io
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_context
from pynetdicom.sop_class import (
    CTImageStorage,
    SecondaryCaptureImageStorage,
    Verification,
)
from sqlalchemy import func, select

from api.runtime import Casebank
from api.settings import Settings
from archive.models import AeTrust, Instance, RegisteredAe
from ingest.demo import mark_deidentified
from ingest.receiver import Receiver
from ingest.validation import dataset_offset

from .. import dicom_data

STORESCU = "/usr/bin/storescu"  # dcmtk's; the venv has a pynetdicom script of the same name
DoorFactory = Callable[..., tuple[Casebank, Receiver]]


@pytest.fixture
def door(settings: Settings) -> Iterator[DoorFactory]:
    """Starts an archive whose settings differ from the test defaults as given; host None means
    the receiver binds where the settings say (not the loopback tests usually force)."""
    opened: list[Casebank] = []

    def start(host: str | None = "127.0.0.1", **overrides: object) -> tuple[Casebank, Receiver]:
        cb = Casebank.open(settings.model_copy(update=overrides))
        opened.append(cb)
        receiver = cb.receiver(host=host)
        receiver.start()
        return cb, receiver

    yield start
    for cb in opened:
        cb.close()


def associate(port: int, host: str = "127.0.0.1", calling_ae: str = "PACS1", tls: ssl.SSLContext | None = None,
              contexts: list | None = None):  # type: ignore[no-untyped-def]
    ae = AE(ae_title=calling_ae)
    ae.requested_contexts = contexts or [build_context(Verification), build_context(CTImageStorage)]
    ae.network_timeout = None  # the requestor waits; only the archive's idle timeout may end it
    ae.acse_timeout = ae.connection_timeout = 10  # connection_timeout also bounds the TLS handshake
    return ae.associate(host, port, ae_title="CASEBANK", tls_args=(tls, "localhost") if tls else None)


def instances(cb: Casebank) -> int:
    with cb.database.session() as session:
        return int(session.scalar(select(func.count(Instance.id))) or 0)


def blob_files(cb: Casebank) -> list[Path]:
    root = cb.blobs.root / "sha256"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def storescu(port: int, *files: Path, calling_ae: str = "PACS1", extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STORESCU, *extra, "-aet", calling_ae, "-aec", "CASEBANK", "127.0.0.1", str(port), *map(str, files)],
        env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True, text=True, timeout=120, check=False,
    )


def ct_file(tmp_path: Path) -> tuple[Dataset, Path]:
    [ds] = dicom_data.study(["CT_small.dcm"])
    [path] = dicom_data.write([ds], tmp_path / "ct")
    return ds, path


def big_image(megabytes: int) -> Dataset:
    """A de-identified secondary capture whose pixel data is `megabytes` MiB."""
    rows = 1024
    columns = megabytes * 512  # 16-bit: 1 MiB per 512 columns of 1024 rows
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.PatientID = ds.PatientName = "PSEUDO^BIG"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.zeros((rows, columns), dtype=np.uint16).tobytes()
    mark_deidentified(ds)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    return ds


def explicit_bytes_under_implicit_meta(ds: Dataset) -> bytes:
    """A Part 10 stream whose file meta says Implicit VR Little Endian while its data set is
    Explicit VR (pydicom refuses to write such a file, so it is put together by hand)."""
    explicit = io.BytesIO()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(explicit, enforce_file_format=True)
    data_set = explicit.getvalue()[dataset_offset(explicit.getvalue()):]
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    meta = io.BytesIO()
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + meta.getvalue() + data_set


# --- where the door is ---------------------------------------------------------------------------

def can_connect(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


def test_the_receiver_binds_to_the_http_host_by_default_and_to_dicom_host_when_set(door, settings):
    _, receiver = door(host=None, http="127.0.0.1:8000")
    assert receiver.config.host == "127.0.0.1"
    assert can_connect("127.0.0.1", receiver.port)
    assert not can_connect("127.0.0.2", receiver.port), "bound to every address, not the HTTP host"
    receiver.stop()
    _, elsewhere = door(host=None, http="127.0.0.1:8000", dicom_host="127.0.0.3")
    assert can_connect("127.0.0.3", elsewhere.port)
    assert not can_connect("127.0.0.1", elsewhere.port)


# --- association limits and idle time ------------------------------------------------------------

def test_ten_idle_associations_do_not_lock_out_a_real_sender(door, tmp_path):
    cb, receiver = door()
    idle = [associate(receiver.port, calling_ae=f"IDLE{n}") for n in range(10)]
    try:
        assert all(a.is_established for a in idle)
        _, path = ct_file(tmp_path)
        sent = storescu(receiver.port, path)
        assert sent.returncode == 0, sent.stderr
        assert instances(cb) == 1
    finally:
        for a in idle:
            a.abort()


def test_an_idle_association_and_a_silent_connection_are_dropped_after_the_timeout(door):
    _, receiver = door(dicom_idle_timeout=1.0)
    assoc = associate(receiver.port)
    assert assoc.is_established
    with socket.create_connection(("127.0.0.1", receiver.port)) as silent:  # never sends A-ASSOCIATE-RQ
        silent.settimeout(10)
        started = time.monotonic()
        assert silent.recv(1) == b"", "the archive should close a connection that says nothing"
        assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.1)
    assert assoc.is_aborted and not assoc.is_established


def test_associations_beyond_the_maximum_are_refused_and_the_limit_is_the_setting(door):
    _, receiver = door(dicom_max_associations=2)
    first, second = associate(receiver.port), associate(receiver.port)
    third = associate(receiver.port)
    try:
        assert first.is_established and second.is_established
        assert third.is_rejected  # A-ASSOCIATE-RJ, local limit exceeded: transient, try later
    finally:
        first.abort()
        second.abort()


# --- what an object must be -----------------------------------------------------------------------

def test_an_oversize_object_is_refused_with_a_comment_and_nothing_is_stored(door):
    cb, receiver = door(max_object_bytes=2 << 20)
    big = big_image(6)
    [small] = dicom_data.study(["CT_small.dcm"])
    assoc = associate(receiver.port, contexts=[build_context(SecondaryCaptureImageStorage, [ExplicitVRLittleEndian]),
                                               build_context(CTImageStorage)])
    response = assoc.send_c_store(big)
    assert response.Status == 0xA700
    assert "> limit 2097152 (CASEBANK_MAX_OBJECT_BYTES)" in response.ErrorComment
    assert int(response.ErrorComment.split()[0]) > 6 << 20
    assert instances(cb) == 0 and blob_files(cb) == []
    assert assoc.send_c_store(small).Status == 0x0000, "the association goes on after a refusal"
    assoc.release()
    assert instances(cb) == 1


def test_an_oversize_file_from_storescu_is_refused(door, tmp_path):
    cb, receiver = door(max_object_bytes=2 << 20)
    [path] = dicom_data.write([big_image(4)], tmp_path / "big")
    sent = storescu(receiver.port, path, extra=("-v",))
    assert "Received Store Response (Refused: OutOfResources)" in sent.stdout + sent.stderr
    assert instances(cb) == 0 and blob_files(cb) == []


def test_a_path_as_sop_instance_uid_is_refused_with_c000(door, tmp_path):
    cb, receiver = door()
    [ds] = dicom_data.study(["CT_small.dcm"])
    ds.SOPInstanceUID = "../../etc/passwd"
    ds.file_meta.MediaStorageSOPInstanceUID = "../../etc/passwd"
    assoc = associate(receiver.port)
    response = assoc.send_c_store(ds)
    assoc.release()
    assert response.Status == 0xC000
    assert "SOPInstanceUID is not a valid UID" in response.ErrorComment
    assert instances(cb) == 0 and blob_files(cb) == []


@pytest.mark.parametrize("bad_uid", ["1.2.03.4", "1.2..3", "1." + "2" * 70])
def test_malformed_study_uids_are_refused(door, bad_uid):
    cb, receiver = door()
    [ds] = dicom_data.study(["CT_small.dcm"])
    ds.StudyInstanceUID = bad_uid
    assoc = associate(receiver.port)
    response = assoc.send_c_store(ds)
    assoc.release()
    assert response.Status == 0xC000 and "StudyInstanceUID" in response.ErrorComment
    assert instances(cb) == 0


def test_explicit_vr_bytes_on_an_implicit_vr_context_are_refused(door, tmp_path, monkeypatch):
    from pynetdicom import _config

    cb, receiver = door()
    [ds] = dicom_data.study(["CT_small.dcm"])
    path = tmp_path / "lying.dcm"
    path.write_bytes(explicit_bytes_under_implicit_meta(ds))
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send the file's bytes as they are
    assoc = associate(receiver.port, contexts=[build_context(CTImageStorage, [ImplicitVRLittleEndian])])
    response = assoc.send_c_store(path)
    assoc.release()
    assert response.Status == 0xC000
    assert response.ErrorComment == "Explicit VR bytes on an Implicit VR transfer syntax"
    assert instances(cb) == 0 and blob_files(cb) == []
    honest = tmp_path / "honest.dcm"
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(honest, enforce_file_format=True)
    assoc = associate(receiver.port, contexts=[build_context(CTImageStorage, [ImplicitVRLittleEndian])])
    assert assoc.send_c_store(honest).Status == 0x0000
    assoc.release()


# --- who may come in ------------------------------------------------------------------------------

def register(cb: Casebank, ae_title: str, host: str = "") -> None:
    with cb.database.session() as session:
        session.add(RegisteredAe(ae_title=ae_title, host=host, trust=AeTrust.USER))


def test_known_aes_only_refuses_an_unknown_calling_ae_at_association(door, tmp_path):
    cb, receiver = door(known_aes_only=True)
    register(cb, "KNOWN")
    register(cb, "ELSEWHERE", host="127.0.0.9")
    stranger = associate(receiver.port, calling_ae="STRANGER")
    assert stranger.is_rejected
    assert (stranger.acceptor.primitive.result, stranger.acceptor.primitive.result_source,
            stranger.acceptor.primitive.diagnostic) == (0x01, 0x01, 0x03)  # calling AE not recognised
    assert associate(receiver.port, calling_ae="ELSEWHERE").is_rejected, "registered for another host"
    known = associate(receiver.port, calling_ae="KNOWN")
    assert known.is_established
    known.release()
    _, path = ct_file(tmp_path)
    assert storescu(receiver.port, path, calling_ae="STRANGER").returncode != 0
    assert instances(cb) == 0
    register(cb, "STRANGER")  # read per association: no restart needed
    sent = storescu(receiver.port, path, calling_ae="STRANGER")
    assert sent.returncode == 0, sent.stderr
    assert instances(cb) == 1


def test_without_known_aes_only_any_calling_ae_is_accepted(door):
    _, receiver = door()
    assoc = associate(receiver.port, calling_ae="ANYONE")
    assert assoc.is_established
    assoc.release()


# --- TLS ------------------------------------------------------------------------------------------

def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "casebank-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_on_the_dicom_port(door, tmp_path):
    cert, key = self_signed(tmp_path / "tls")
    cb, receiver = door(dicom_tls_cert=cert, dicom_tls_key=key)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    client.check_hostname = False
    [ds] = dicom_data.study(["CT_small.dcm"])
    with socket.create_connection(("127.0.0.1", receiver.port)):  # silent: must not hold up the handshakes
        assoc = associate(receiver.port, tls=client)
        assert assoc.is_established
        assert assoc.send_c_store(ds).Status == 0x0000
        assoc.release()
    plain = associate(receiver.port)
    assert not plain.is_established, "plain TCP must not reach a TLS port"
    _, path = ct_file(tmp_path)
    sent = storescu(receiver.port, path, extra=("+tla", "+cf", str(cert)))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert instances(cb) == 2


def test_tls_with_a_ca_requires_a_client_certificate(door, tmp_path):
    cert, key = self_signed(tmp_path / "tls")
    _, receiver = door(dicom_tls_cert=cert, dicom_tls_key=key, dicom_tls_ca=cert)
    anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    anonymous.check_hostname = False
    assert not associate(receiver.port, tls=anonymous).is_established
    with_cert = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    with_cert.check_hostname = False
    with_cert.load_cert_chain(str(cert), str(key))
    assoc = associate(receiver.port, tls=with_cert)
    assert assoc.is_established
    assoc.release()
