"""Ingest benchmark: Casebank's DICOM receiver against dcmtk's storescp, same corpus, same sender.

Measured: the wall time of one `storescu +sd` run (dcmtk, one association, the files' own Explicit
VR Little Endian) sending a synthetic de-identified CT study of N instances (512x512, 16-bit,
~513 KiB each) to (1) dcmtk `storescp -od DIR`, which writes each instance to disk before answering
(its normal mode; `+B` bypass is not used), and (2) `casebank serve`, which answers Success only
after validating the object, fsyncing its blob and committing the database.

Comparable because both peers run on this machine and already listen when the clock starts; the
sender, its command line and environment (TCP_NODELAY=1: without it delayed ACKs cap dcmtk near
20 instances/s), the corpus, loopback and transfer syntax are the same; and the clock covers exactly
one storescu process, so its start-up and file reading cost the same on both sides. Each run is
checked afterwards (every instance on storescp's disk, or in Casebank's `instances` table) and the
script exits non-zero if any is missing. The peers do not do the same work: storescp neither fsyncs
nor indexes, so the ratio is the cost of validation, durability and filing against a plain file
writer. storescp's default maximum PDU is 16 KB while Casebank accepts any size; pass
`--storescp-args=-pdu,131072` to even that out. Server CPU seconds during the send are shown too.

Run as a script (`cd /work/main && .venv/bin/python bench/ingest.py [--count 1000] [--keep]`):
imported as a module, the file's name would shadow the `ingest` package.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

STORESCU, STORESCP = "/usr/bin/storescu", "/usr/bin/storescp"  # dcmtk's, not pynetdicom's scripts
CASEBANK = Path(sys.executable).with_name("casebank")
CALLING_AE, STORESCP_AE, CASEBANK_AE = "BENCHSCU", "STORESCP", "CASEBANK"
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
SIDE = 512


@dataclass(frozen=True)
class Result:
    peer: str
    instances: int
    seconds: float
    total_bytes: int
    server_cpu: float  # CPU seconds the receiving server used during the send


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def template() -> Dataset:
    """One CT header; only UIDs, numbers, positions and pixels change per instance."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.TransferSyntaxUID = CTImageStorage, ExplicitVRLittleEndian
    header = {
        "SpecificCharacterSet": "ISO_IR 100", "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        "SOPClassUID": CTImageStorage, "Modality": "CT", "Manufacturer": "Casebank Bench",
        "StudyDate": "20250314", "SeriesDate": "20250314", "ContentDate": "20250314",
        "StudyTime": "101500", "SeriesTime": "101500", "ContentTime": "101500",
        "AccessionNumber": "", "ReferringPhysicianName": "", "StudyID": "",
        "StudyDescription": "CT chest abdomen pelvis (ingest benchmark)", "PatientName": "Bench^Synthetic",
        "PatientID": "BENCH-0001", "PatientSex": "O", "PatientAge": "055Y",
        "BodyPartExamined": "CHEST", "SliceThickness": "1.0", "KVP": "120",
        "PatientIdentityRemoved": "YES", "DeidentificationMethod": "PS3.15 Basic Profile (synthetic)",
    }
    for keyword, value in header.items():
        setattr(ds, keyword, value)
    # de-identified as an edge with its default options would send it: the archive's door check
    # judges every attribute against these declared options and quarantines anything else
    declared = []  # (this script is named ingest.py, so it cannot import the ingest package)
    for code, meaning in (("113100", "Basic Application Confidentiality Profile"),
                          ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
                          ("113108", "Retain Patient Characteristics Option"),
                          ("113105", "Clean Descriptors Option")):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "DCM", meaning
        declared.append(item)
    ds.DeidentificationMethodCodeSequence = declared
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["casebank-bench", "study"])
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=["casebank-bench", "frame"])
    ds.ImageOrientationPatient, ds.PixelSpacing = [1, 0, 0, 0, 1, 0], [0.7, 0.7]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = SIDE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    return ds


def build_corpus(folder: Path, count: int, series: int) -> list[str]:
    """Write `count` instances; returns their SOP Instance UIDs. Pixels: a noisy disc, rolled per slice."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(20250314)
    y, x = np.mgrid[:SIDE, :SIDE]
    disc = ((x - SIDE / 2) ** 2 + (y - SIDE / 2) ** 2 < (SIDE * 0.42) ** 2) * 1064  # water ~ 40 HU
    base = (disc + rng.normal(0, 20, (SIDE, SIDE))).clip(0, 4095).astype("<u2")
    ds = template()
    series_uids = [generate_uid(entropy_srcs=["casebank-bench", "series", str(s)]) for s in range(series)]
    uids: list[str] = []
    for i in range(count):
        s, n = i % series, i // series + 1
        uid = generate_uid(entropy_srcs=["casebank-bench", "instance", str(i)])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SeriesInstanceUID, ds.SeriesNumber = series_uids[s], s + 1
        ds.SeriesDescription = f"Axial 1.0 mm series {s + 1}"
        ds.InstanceNumber, ds.SliceLocation = n, -float(n)
        ds.ImagePositionPatient = [-179.2, -179.2, -float(n)]
        ds.PixelData = np.roll(base, (i * 7) % SIDE, axis=1).tobytes()
        ds.save_as(folder / f"CT{i:05d}.dcm", enforce_file_format=True)
        uids.append(uid)
    return uids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextmanager
def serving(command: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run a server until the block ends (even on error); yields its pid once `port` accepts connections."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port, process)
        yield process.pid
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{log.name} tail:\n{tail(log)}") from exc
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def send(port: int, called_ae: str, corpus: Path, server_pid: int) -> tuple[float, float]:
    """One storescu run; returns its wall seconds and the server's CPU seconds meanwhile."""
    command = [STORESCU, "-aet", CALLING_AE, "-aec", called_ae, "+sd", "127.0.0.1", str(port), str(corpus)]
    os.sync()  # no dirty pages from writing the corpus or the previous peer's files flush meanwhile
    cpu, started = cpu_seconds(server_pid), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=DCMTK_ENV)
    seconds, cpu = time.perf_counter() - started, cpu_seconds(server_pid) - cpu
    if done.returncode != 0:
        raise RuntimeError(f"storescu to {called_ae} exited {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, cpu


def bench_storescp(work: Path, corpus: Path, uids: list[str], total: int, extra: list[str]) -> Result:
    out, port = work / "storescp-out", free_port()
    out.mkdir()
    command = [STORESCP, *extra, "-od", str(out), "-aet", STORESCP_AE, str(port)]
    with serving(command, port, work / "storescp.log", DCMTK_ENV) as pid:
        seconds, cpu = send(port, STORESCP_AE, corpus, pid)
    stored = sum(1 for p in out.iterdir() if p.is_file())
    if stored != len(uids):
        raise RuntimeError(f"storescp wrote {stored} of {len(uids)} instances; log:\n{tail(work / 'storescp.log')}")
    return Result("dcmtk storescp -od", len(uids), seconds, total, cpu)


def bench_casebank(work: Path, corpus: Path, uids: list[str], total: int) -> Result:
    data, http_port, dicom_port, log = work / "casebank-data", free_port(), free_port(), work / "casebank.log"
    for admin in (["user", "add", "bench", "--email", "bench@example.invalid", "--gmc", "BENCH0001",
                   "--generate-password"], ["ae", "bind", CALLING_AE, "bench"]):
        subprocess.run([str(CASEBANK), *admin, "--data", str(data)], check=True, capture_output=True)
    command = [str(CASEBANK), "serve", "--data", str(data), "--http", f"127.0.0.1:{http_port}",
               "--dicom-port", str(dicom_port), "--ae", CASEBANK_AE]
    with serving(command, dicom_port, log) as pid:
        seconds, cpu = send(dicom_port, CASEBANK_AE, corpus, pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/health", timeout=10) as reply:
            health = json.load(reply)
        with sqlite3.connect(data / "casebank.sqlite3") as db:
            stored = {row[0] for row in db.execute("SELECT sop_instance_uid FROM instances")}
    missing = set(uids) - stored
    if health.get("status") != "ok" or missing or len(stored) != len(uids):
        raise RuntimeError(f"casebank stored {len(stored)} of {len(uids)} instances ({len(missing)} missing),"
                           f" health {health}; log tail:\n{tail(log)}")
    return Result("casebank serve", len(uids), seconds, total, cpu)


def report(results: list[Result]) -> None:
    print(f"{'peer':<20} {'instances':>9} {'seconds':>8} {'inst/s':>8} {'MB/s':>7} {'server CPU s':>12}")
    for r in results:
        print(f"{r.peer:<20} {r.instances:>9} {r.seconds:>8.2f} {r.instances / r.seconds:>8.1f}"
              f" {r.total_bytes / 1e6 / r.seconds:>7.1f} {r.server_cpu:>12.2f}")
    base, casebank = results
    ratio = (casebank.instances / casebank.seconds) / (base.instances / base.seconds)
    print(f"ratio casebank/storescp (instances/s): {ratio:.3f}")
    print(f"CPUs: {os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="instances in the corpus (default 1000)")
    parser.add_argument("--series", type=int, default=4, help="series in the one study (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (corpus, outputs, logs)")
    parser.add_argument("--storescp-args", default="", help="extra storescp arguments, comma-separated")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="casebank-bench-"))
    try:
        corpus = work / "corpus"
        started = time.perf_counter()
        uids = build_corpus(corpus, args.count, args.series)
        total = sum(p.stat().st_size for p in corpus.iterdir())
        print(f"corpus: {len(uids)} CT instances, {total / 1e6:.1f} MB ({total / len(uids) / 1024:.0f} KiB each),"
              f" {args.series} series, built in {time.perf_counter() - started:.1f} s in {work}")
        extra = [a for a in args.storescp_args.split(",") if a]
        print(f"storescp mode: -od (write to disk, no +B bypass, no fsync){' extra: ' + ' '.join(extra) if extra else ''}")
        print(f"sender: {STORESCU} +sd, one association, Explicit VR Little Endian, TCP_NODELAY=1")
        results = [bench_storescp(work, corpus, uids, total, extra), bench_casebank(work, corpus, uids, total)]
        report(results)
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        sys.stdout.flush()
        detail = getattr(exc, "stderr", None) or b""
        print(f"benchmark failed: {exc}\n{detail.decode(errors='replace')}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
