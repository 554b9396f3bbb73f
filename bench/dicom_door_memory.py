"""Memory of the DICOM receiver for one large C-STORE (issue 10: a 200 MB store took the process
to 1.3 GB).

The archive's receiver runs in a child process; dcmtk's storescu sends one object of --megabytes
MiB from disk; the child's resident set (VmRSS) and peak (VmHWM, from /proc) are read before and
after. Two runs: the object under CASEBANK_MAX_OBJECT_BYTES (stored) and over it (refused: the
receiver stops keeping the bytes once past the limit).

Run: `cd /work/main && .venv/bin/python bench/dicom_door_memory.py [--megabytes 200]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MiB = 1 << 20
SERVE = """
import sys, time
sys.path.insert(0, {root!r})
from api.runtime import Casebank
from api.settings import Settings
cb = Casebank.open(Settings(data={data!r}, dicom_port={port}, max_object_bytes={limit}, secret_key="bench"))
cb.receiver(host="127.0.0.1").start()
print("ready", flush=True)
sys.stdin.read()
cb.close()
"""


def big_object(path: Path, megabytes: int) -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID = ds.PatientName = "PSEUDO^BENCH"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "bench"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113100", "DCM", "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = [code]
    ds.Modality = "OT"
    ds.Rows, ds.Columns = megabytes * 64, 8192  # 16-bit: 64 rows of 8192 columns per MiB
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.zeros((ds.Rows, ds.Columns), dtype=np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def run(path: Path, limit: int, workdir: Path, port: int) -> None:
    script = SERVE.format(root=str(Path(__file__).resolve().parents[1]), data=str(workdir), port=port, limit=limit)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        rss_before, _ = memory(child.pid)
        started = time.monotonic()
        sent = subprocess.run(["/usr/bin/storescu", "-v", "-aet", "BENCH", "-aec", "CASEBANK", "127.0.0.1",
                               str(port), str(path)], env={**os.environ, "TCP_NODELAY": "1"},
                              capture_output=True, text=True, timeout=600, check=False)
        seconds = time.monotonic() - started
        rss_after, peak = memory(child.pid)
        answer = next((line for line in sent.stderr.splitlines() if "Store Response" in line), sent.stderr.strip())
        print(f"limit {limit // MiB:>5} MiB: {answer.split('I: ')[-1]:<45} in {seconds:5.1f} s; "
              f"RSS before {rss_before} MiB, after {rss_after} MiB, peak {peak} MiB (+{peak - rss_before} MiB)")
    finally:
        child.communicate("", timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    from tests.peers import free_port

    with tempfile.TemporaryDirectory(prefix="casebank-door-bench-") as tmp:
        path = Path(tmp) / "big.dcm"
        big_object(path, args.megabytes)
        print(f"object: {path.stat().st_size / MiB:.0f} MiB")
        run(path, 1 << 30, Path(tmp) / "stored", free_port())
        run(path, (args.megabytes // 2) * MiB, Path(tmp) / "refused", free_port())


if __name__ == "__main__":
    main()
