"""De-identification benchmark: Casebank's PS3.15 engine against dicognito, same corpus, one run.

Measured: instances per second to read a Part 10 object from memory, de-identify it and write it
back to memory, for N synthetic CT instances (512x512, 16-bit, a realistic identified header with
a nested sequence and private tags). Both engines get the same bytes and the same read/write code,
so the ratio compares the de-identification work alone. They do not do the same work: Casebank
applies every row of PS3.15 Table E.1-1 (2024b) with keyed UID and date mapping and reports each
change; dicognito replaces identifiers with plausible fakes. Pixel cleaning is not part of either.

Run as a script: `cd /work/main && .venv/bin/python bench/deid.py [--count 1000]`.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def corpus(count: int) -> list[bytes]:
    base = dcmread(get_testdata_file("CT_small.dcm"))
    base.Rows = base.Columns = 512
    base.PixelData = np.random.default_rng(1).integers(0, 4000, (512, 512), dtype=np.uint16).tobytes()
    base.PatientName, base.PatientID, base.PatientBirthDate = "Smith^John", "9434765919", "19600101"
    base.AccessionNumber, base.ReferringPhysicianName = "ACC123456", "Jones^Ann"
    base.InstitutionName, base.StudyDescription = "St Elsewhere Hospital", "CT CHEST Smith"
    referenced = Dataset()
    referenced.ReferencedSOPClassUID, referenced.ReferencedSOPInstanceUID = base.SOPClassUID, generate_uid()
    base.ReferencedImageSequence = [referenced]
    block = base.private_block(0x0009, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "Smith John private")
    study_uid = generate_uid()
    out = []
    for number in range(count):
        base.StudyInstanceUID, base.SOPInstanceUID = study_uid, generate_uid()
        base.file_meta.MediaStorageSOPInstanceUID = base.SOPInstanceUID
        base.InstanceNumber = number + 1
        buffer = io.BytesIO()
        base.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def timed(name: str, objects: list[bytes], process: Callable[[Dataset], Dataset]) -> float:
    started = time.perf_counter()
    for encoded in objects:
        ds = dcmread(io.BytesIO(encoded))
        result = process(ds)
        result.save_as(io.BytesIO(), enforce_file_format=True)
    seconds = time.perf_counter() - started
    rate = len(objects) / seconds
    print(f"{name:<22}{len(objects):>10}{seconds:>10.2f}{rate:>10.1f}")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()

    from dicognito.anonymizer import Anonymizer

    from ingest.deid import Profile, ProjectKey, deidentify

    objects = corpus(args.count)
    print(f"corpus: {len(objects)} CT instances, {sum(map(len, objects)) / 1e6:.1f} MB; CPUs: {os.cpu_count()}")
    print(f"{'engine':<22}{'instances':>10}{'seconds':>10}{'inst/s':>10}")
    profile, key = Profile.default(), ProjectKey.generate()
    casebank = timed("casebank deidentify", objects, lambda ds: deidentify(ds, profile, key).dataset)
    anonymizer = Anonymizer(seed="bench")

    def dicognito(ds: Dataset) -> Dataset:
        anonymizer.anonymize(ds)
        return ds

    peer = timed("dicognito 0.19", objects, dicognito)
    print(f"ratio casebank/dicognito (instances/s): {casebank / peer:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
