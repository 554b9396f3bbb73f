"""`casebank deid` over files and folders: every input written, held, refused or skipped as a
duplicate, with the reason; nothing written twice; outputs that dciodvfy finds no worse than the
inputs, on the whole of pydicom's test data."""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import pydicom.data
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from ingest.deid import Profile, ProjectKey, batch
from ingest.deid.batch import BatchReport, FileReport, Outcome, deidentify_files
from ingest.deid.pixels import PixelCleaningFailed

KEY = ProjectKey(b"batch-test-secret-0123456789abcdef")
CASEBANK = str(Path(sys.executable).with_name("casebank"))
TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
CAT = Path(str(files("deid_data") / "data" / "animals" / "cat.dcm"))


def run(source: Path, target: Path, profile: Profile | None = None) -> BatchReport:
    return deidentify_files(source, target, profile or Profile(), KEY)


def only(report: BatchReport) -> FileReport:
    [entry] = report.files
    return entry


def copy_of(name: str, folder: Path, as_name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (as_name or name)
    path.write_bytes(Path(get_testdata_file(name)).read_bytes())
    return path


def saved(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def outputs(target: Path) -> list[Path]:
    return sorted(target.rglob("*.dcm"))


# --- Reading: bare data sets, File Meta, what is not DICOM ---------------------------------------


@pytest.mark.parametrize(("name", "syntax"), [
    ("ExplVR_LitEndNoMeta.dcm", ExplicitVRLittleEndian), ("ExplVR_BigEndNoMeta.dcm", ExplicitVRBigEndian),
])
def test_a_data_set_without_part_10_header_is_read_and_written_with_file_meta(name: str, syntax: str, tmp_path: Path) -> None:
    report = run(copy_of(name, tmp_path / "in"), tmp_path / "out")
    entry = only(report)
    assert entry.outcome is Outcome.WRITTEN, entry.reason
    assert any("no preamble or File Meta Information" in note for note in entry.notes)
    raw = entry.output.read_bytes()
    assert raw[128:132] == b"DICM"
    out = dcmread(entry.output)  # not forced: a Part 10 file
    assert out.file_meta.TransferSyntaxUID == syntax
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.PatientIdentityRemoved == "YES"


def test_random_bytes_and_text_are_refused_as_not_dicom(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "noise.bin").write_bytes(random.Random(7).randbytes(4096))
    (source / "notes.txt").write_text("Patient seen on ward 7; images to follow.\n" * 20)
    bare = DicomBytesIO()
    bare.is_little_endian, bare.is_implicit_VR = True, False
    lone = Dataset()
    lone.PatientName = "Only^Element"
    write_dataset(bare, lone)  # valid encoding, but no object: nothing names a SOP Class
    (source / "lone_element").write_bytes(bare.getvalue())
    report = run(source, tmp_path / "out")
    assert [f.outcome for f in report.files] == [Outcome.REFUSED] * 3
    assert all(f.reason.startswith("not a DICOM file (") for f in report.files), [f.reason for f in report.files]
    assert outputs(tmp_path / "out") == []


def without_transfer_syntax(name: str, path: Path, *, implicit: bool) -> Dataset:
    """``name`` written as Part 10 whose File Meta lacks the Transfer Syntax UID; the data set read."""
    ds = dcmread(get_testdata_file(name))
    del ds.file_meta.TransferSyntaxUID
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=False)
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fp.getvalue())
    return ds


def test_a_missing_transfer_syntax_is_inferred_as_pydicom_reads_it(tmp_path: Path) -> None:
    ds = without_transfer_syntax("CT_small.dcm", tmp_path / "in" / "no_syntax.dcm", implicit=True)
    entry = only(run(tmp_path / "in", tmp_path / "out"))
    assert entry.outcome is Outcome.WRITTEN, entry.reason
    assert "no Transfer Syntax UID: Implicit VR Little Endian inferred from the encoding read" in entry.notes
    out = dcmread(entry.output)
    assert out.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert out.PixelData == ds.PixelData


def test_a_compressed_object_without_transfer_syntax_is_refused(tmp_path: Path) -> None:
    without_transfer_syntax("JPEG2000.dcm", tmp_path / "in" / "j2k.dcm", implicit=False)
    entry = only(run(tmp_path / "in", tmp_path / "out"))
    assert entry.outcome is Outcome.REFUSED
    assert entry.reason == "no Transfer Syntax UID, and the pixel data is encapsulated: its compression is unknown"


# --- Truncated inputs ----------------------------------------------------------------------------


def _truncated_native(folder: Path) -> Path:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = ds.PixelData[:-100]  # consistent element length, but short of 128 x 128 x 16 bits
    return saved(ds, folder / "short_pixels.dcm")


def _cut_fragment(folder: Path) -> Path:
    ds = dcmread(get_testdata_file("JPEG2000.dcm"))
    fragment = ds.PixelData[16:]
    # The fragment's item says 5000 bytes but only some arrived, before a proper delimiter.
    ds.PixelData = b"\xfe\xff\x00\xe0" + bytes(4) + b"\xfe\xff\x00\xe0" + struct.pack("<L", 5000) + fragment
    ds["PixelData"].is_undefined_length = True
    return saved(ds, folder / "cut_fragment.dcm")


def _too_few_fragments(folder: Path) -> Path:
    ds = dcmread(get_testdata_file("JPEG2000.dcm"))
    ds.NumberOfFrames = 3  # one fragment cannot hold three frames
    return saved(ds, folder / "frames_missing.dcm")


def _cut_inside_a_header(folder: Path) -> Path:
    original = Path(get_testdata_file("CT_small.dcm"))
    header = dcmread(original)._dict[0x00280030].value_tell - 8  # Pixel Spacing's tag, VR and length
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cut_header.dcm"
    path.write_bytes(original.read_bytes()[:header + 3])  # pydicom stops there without a word
    return path


def _file(name: str, folder: Path) -> Path:
    return copy_of(name, folder)


TRUNCATED = {
    "short native pixel data": (_truncated_native, "Pixel Data (7FE0,0010) is truncated: 32668 of 32768 bytes arrived"),
    "MR_truncated.dcm": (lambda f: _file("MR_truncated.dcm", f), "Pixel Data (7FE0,0010) is truncated: 8130 of 8192 bytes arrived"),
    "rtplan_truncated.dcm": (lambda f: _file("rtplan_truncated.dcm", f), "Beam Sequence (300A,00B0) is truncated: 711 of 976 bytes arrived"),
    "emri_small_jpeg_2k_lossless_too_short.dcm": (
        lambda f: _file("emri_small_jpeg_2k_lossless_too_short.dcm", f),
        "the object ends early: End of file reached before delimiter (FFFE,E0DD)",
    ),
    "cut-off fragment": (_cut_fragment, "encapsulated pixel data is cut off: fragment 1 declares 5000 bytes"),
    "fewer fragments than frames": (_too_few_fragments, "encapsulated pixel data is cut off: 1 fragment(s) for 3 frames"),
    "cut inside an element header": (_cut_inside_a_header, "the object ends early: 3 byte(s) after Columns (0028,0011)"),
}


@pytest.mark.parametrize("case", list(TRUNCATED))
def test_truncated_inputs_are_refused_naming_the_reason(case: str, tmp_path: Path) -> None:
    make, reason = TRUNCATED[case]
    make(tmp_path / "in")
    entry = only(run(tmp_path / "in", tmp_path / "out"))
    assert entry.outcome is Outcome.REFUSED
    assert entry.reason.startswith(reason), entry.reason
    assert outputs(tmp_path / "out") == []


@pytest.mark.parametrize("name", ["MR_small_padded.dcm", "SC_rgb_small_odd.dcm", "SC_rgb_small_odd_jpeg.dcm"])
def test_padding_and_excess_the_standard_tolerates_are_not_truncation(name: str, tmp_path: Path) -> None:
    entry = only(run(copy_of(name, tmp_path / "in"), tmp_path / "out"))
    assert entry.outcome is Outcome.WRITTEN, entry.reason
    assert dcmread(entry.output).PixelData == dcmread(get_testdata_file(name)).PixelData


# --- Identity: what the output is named by --------------------------------------------------------


@pytest.mark.parametrize(("keyword", "named"), [
    ("StudyInstanceUID", "no Study Instance UID (0020,000D)"),
    ("SeriesInstanceUID", "no Series Instance UID (0020,000E)"),
    ("SOPInstanceUID", "no SOP Instance UID (0008,0018)"),
])
def test_a_missing_instance_uid_is_refused_naming_it(keyword: str, named: str, tmp_path: Path) -> None:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    delattr(ds, keyword)
    saved(ds, tmp_path / "in" / "incomplete.dcm")
    entry = only(run(tmp_path / "in", tmp_path / "out"))
    assert entry.outcome is Outcome.REFUSED
    assert entry.reason.startswith(named), entry.reason


def test_a_dicomdir_is_refused_as_an_index(tmp_path: Path) -> None:
    copy_of("DICOMDIR", tmp_path / "in")
    entry = only(run(tmp_path / "in", tmp_path / "out"))
    assert entry.outcome is Outcome.REFUSED and entry.reason.startswith("a DICOMDIR")


# --- Never overwrite ----------------------------------------------------------------------------


def test_same_sop_instance_uid_different_content_keeps_both_and_names_the_collision(tmp_path: Path) -> None:
    first = copy_of("CT_small.dcm", tmp_path / "in", "a.dcm")
    other = dcmread(get_testdata_file("CT_small.dcm"))
    other.SliceThickness = "9.5"  # kept by the profile: the outputs differ
    second = saved(other, tmp_path / "in" / "b.dcm")
    report = run(tmp_path / "in", tmp_path / "out")
    a, b = report.files
    assert (a.outcome, b.outcome) == (Outcome.WRITTEN, Outcome.WRITTEN)
    assert a.reason == "" and b.output.parent == a.output.parent
    assert b.output.name == a.output.name.removesuffix(".dcm") + ".2.dcm"
    assert str(first) in b.reason and "collision" in b.reason and b.input == second
    assert outputs(tmp_path / "out") == sorted([a.output, b.output])
    assert dcmread(a.output).SliceThickness != dcmread(b.output).SliceThickness


def test_the_same_file_twice_is_written_once_and_reported_as_a_duplicate(tmp_path: Path) -> None:
    first = copy_of("CT_small.dcm", tmp_path / "in", "a.dcm")
    copy_of("CT_small.dcm", tmp_path / "in", "b.dcm")
    report = run(tmp_path / "in", tmp_path / "out")
    a, b = report.files
    assert (a.outcome, b.outcome) == (Outcome.WRITTEN, Outcome.DUPLICATE)
    assert b.reason == f"duplicate of {first}, not written again"
    assert b.output == a.output and outputs(tmp_path / "out") == [a.output]


def test_files_from_an_earlier_run_are_never_overwritten(tmp_path: Path) -> None:
    copy_of("CT_small.dcm", tmp_path / "in", "a.dcm")
    [earlier] = [f.output for f in run(tmp_path / "in", tmp_path / "out").files]
    again = only(run(tmp_path / "in", tmp_path / "out"))
    assert again.outcome is Outcome.DUPLICATE and "already in the output folder before this run" in again.reason
    earlier.write_bytes(earlier.read_bytes() + b"\x00\x00")  # someone's file of that name, different
    stamp = earlier.stat().st_mtime_ns
    third = only(run(tmp_path / "in", tmp_path / "out"))
    assert third.outcome is Outcome.WRITTEN and third.output.name.endswith(".2.dcm")
    assert "already in the output folder before this run" in third.reason
    assert earlier.stat().st_mtime_ns == stamp


def test_an_output_folder_inside_the_input_is_not_read_as_input(tmp_path: Path) -> None:
    copy_of("CT_small.dcm", tmp_path / "in", "a.dcm")
    run(tmp_path / "in", tmp_path / "in" / "out")
    again = run(tmp_path / "in", tmp_path / "in" / "out")
    assert [f.input.name for f in again.files] == ["a.dcm"]


# --- Held: burned-in text a person must look at ------------------------------------------------------


def test_a_held_file_is_reported_not_written_and_the_exit_status_is_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from api.cli import main

    copy_of("CT_small.dcm", tmp_path / "in", "ct.dcm")
    copy_of("MR_small.dcm", tmp_path / "in", "mr.dcm")
    held_uid = str(dcmread(get_testdata_file("MR_small.dcm")).SOPInstanceUID)
    real = batch.clean_pixel_data

    def uncertain(ds: Dataset):  # type: ignore[no-untyped-def]
        if str(ds.SOPInstanceUID) == held_uid:
            raise PixelCleaningFailed("text over the anatomy could not be read with certainty")
        return real(ds)

    monkeypatch.setattr(batch, "clean_pixel_data", uncertain)
    status = main(["deid", str(tmp_path / "in"), str(tmp_path / "out"), "--data", str(tmp_path / "data")])
    captured = capsys.readouterr()
    assert status == 1
    assert f"{tmp_path / 'in' / 'mr.dcm'}: held for a person: burned-in text could not be cleaned safely: " \
           "text over the anatomy could not be read with certainty" in captured.err
    assert "1 held" in captured.out and "de-identified 1 file(s)" in captured.out
    report = json.loads((tmp_path / "out" / "deid-report.json").read_text())
    held = [f for f in report["files"] if f["outcome"] == "held"]
    assert [f["input"] for f in held] == [str(tmp_path / "in" / "mr.dcm")] and held[0]["output"] is None
    assert len(outputs(tmp_path / "out")) == 1


# --- The command line and its report -------------------------------------------------------------


def cli(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CASEBANK, "deid", *args, "--data", str(data)], capture_output=True, text=True, timeout=600, check=False)


def test_cli_reports_each_file_and_writes_the_json_report(tmp_path: Path) -> None:
    source = tmp_path / "in"
    copy_of("CT_small.dcm", source, "ct.dcm")
    copy_of("CT_small.dcm", source, "ct-again.dcm")
    copy_of("examples_ybr_color.dcm", source, "us.dcm")  # ultrasound: scanned, burned-in text blanked
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    del ds.StudyInstanceUID
    saved(ds, source / "no-study.dcm")
    (source / "notes.txt").write_text("not dicom")
    report_file = tmp_path / "audit" / "report.json"
    done = cli(str(source), str(tmp_path / "out"), "--report", str(report_file), data=tmp_path / "data")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith("de-identified 2 file(s) into ")
    assert "2 refused, 0 held, 1 skipped as duplicates" in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("casebank deid: ")]
    assert len(lines) == 2
    assert lines[0] == f"casebank deid: {source / 'no-study.dcm'}: no Study Instance UID (0020,000D): the output is named by it"
    assert lines[1].startswith(f"casebank deid: {source / 'notes.txt'}: not a DICOM file (no DICOM preamble")
    assert not (tmp_path / "out" / "deid-report.json").exists()
    report = json.loads(report_file.read_text())
    assert report["counts"] == {"written": 2, "held": 0, "refused": 2, "skipped-duplicate": 1}
    by_input = {Path(f["input"]).name: f for f in report["files"]}
    assert set(by_input) == {"ct.dcm", "ct-again.dcm", "us.dcm", "no-study.dcm", "notes.txt"}
    us = by_input["us.dcm"]
    assert us["outcome"] == "written" and Path(us["output"]).is_file()
    assert us["pixels"]["scanned"] and 0 < us["pixels"]["changed_fraction"] < 1
    assert us["pixels"]["regions"] and all({"x", "y", "width", "height", "source", "text"} <= set(r) for r in us["pixels"]["regions"])
    codes = [item.CodeValue for item in dcmread(us["output"]).DeidentificationMethodCodeSequence]
    assert "113101" in codes  # Clean Pixel Data
    ct, again = by_input["ct-again.dcm"], by_input["ct.dcm"]  # in name order: "-" sorts before "."
    assert (ct["outcome"], again["outcome"]) == ("written", "skipped-duplicate")
    assert again["reason"] == f"duplicate of {source / 'ct-again.dcm'}, not written again"
    assert ct["pixels"]["scanned"] is False  # an original CT that declares no burned-in text
    assert "113101" not in [item.CodeValue for item in dcmread(ct["output"]).DeidentificationMethodCodeSequence]


def test_cli_exit_status_is_0_when_every_file_is_written_or_a_duplicate(tmp_path: Path) -> None:
    copy_of("CT_small.dcm", tmp_path / "in", "a.dcm")
    copy_of("CT_small.dcm", tmp_path / "in", "b.dcm")
    done = cli(str(tmp_path / "in"), str(tmp_path / "out"), data=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "deid-report.json").read_text())
    assert report["counts"] == {"written": 1, "held": 0, "refused": 0, "skipped-duplicate": 1}
    help_text = subprocess.run([CASEBANK, "deid", "--help"], capture_output=True, text=True, timeout=60, check=False).stdout
    assert "1 if any was refused or held" in " ".join(help_text.split())


# --- Type 2C kept valid: Responsible Person of an animal ----------------------------------------


def test_an_animal_keeps_responsible_person_present_and_empty(tmp_path: Path) -> None:
    original = dcmread(CAT)
    assert "ResponsiblePerson" in original and original.PatientSpeciesDescription
    entry = only(run(CAT, tmp_path / "out"))
    assert entry.outcome is Outcome.WRITTEN, entry.reason
    out = dcmread(entry.output)
    assert "ResponsiblePerson" in out and out.ResponsiblePerson == ""
    assert "ResponsibleOrganization" not in out or out.ResponsibleOrganization == ""


# --- The whole of pydicom's test data, checked by dciodvfy ---------------------------------------------

DCIODVFY = "/usr/bin/dciodvfy"


def dciodvfy_errors(path: Path, scratch: Path) -> set[str]:
    """dciodvfy's Error lines, normalised to the kind of error: no values, UIDs or item numbers.

    dciodvfy cannot read deflated data sets, so those are checked from an inflated copy.
    """
    meta = dcmread(path, stop_before_pixels=True, force=True).file_meta
    if meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        ds = dcmread(path)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = scratch / f"inflated-{abs(hash(str(path)))}.dcm"
        ds.save_as(path, enforce_file_format=True)
    done = subprocess.run([DCIODVFY, "-new", str(path)], capture_output=True, text=True, errors="replace", timeout=120, check=False)
    return {_kind(line) for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")}


def _kind(line: str) -> str:
    line = re.sub(r"\[\d+\]", "", line)
    line = re.sub(r"= <[^>]*>", "= <value>", line)
    return re.sub(r"\d+(\.\d+){2,}", "<uid>", line)


DEFAULT_PROFILE = str(files("ingest.deid") / "data" / "profiles" / "default.toml")


@pytest.mark.peers
@pytest.mark.parametrize("profile", [[], ["--profile", DEFAULT_PROFILE]], ids=["basic", "default"])
def test_every_pydicom_test_file_is_reported_and_no_output_is_worse_than_its_input(profile: list[str], tmp_path: Path) -> None:
    """About 30 s a profile here: 176 files, OCR on ultrasound and secondary captures, dciodvfy twice each."""
    started = time.perf_counter()
    done = cli(str(TEST_FILES), str(tmp_path / "out"), *profile, data=tmp_path / "data")
    assert done.returncode == 1, done.stderr  # some of pydicom's files are broken on purpose
    assert "Traceback" not in done.stderr
    report = json.loads((tmp_path / "out" / "deid-report.json").read_text())
    inputs = sorted(str(p) for p in TEST_FILES.rglob("*") if p.is_file())
    assert sorted(f["input"] for f in report["files"]) == inputs  # each input exactly once
    assert all(f["reason"] for f in report["files"] if f["outcome"] in ("refused", "held"))
    written = [f for f in report["files"] if f["outcome"] == "written"]
    assert len({f["output"] for f in written}) == len(written), "an output was written twice"
    on_disk = sorted(str(p) for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name != "deid-report.json")
    assert on_disk == sorted(f["output"] for f in written)
    for f in report["files"]:
        if f["outcome"] == "skipped-duplicate":
            assert f["output"] in on_disk and f["reason"].startswith("duplicate of ")
    reasons = {Path(f["input"]).relative_to(TEST_FILES).as_posix(): f["reason"] for f in report["files"]}
    outcomes = {Path(f["input"]).relative_to(TEST_FILES).as_posix(): f["outcome"] for f in report["files"]}
    assert outcomes["ExplVR_LitEndNoMeta.dcm"] == outcomes["ExplVR_BigEndNoMeta.dcm"] == "written"
    assert reasons["MR_truncated.dcm"].startswith("Pixel Data (7FE0,0010) is truncated")
    assert reasons["rtplan_truncated.dcm"].startswith("Beam Sequence (300A,00B0) is truncated")
    assert reasons["README.txt"].startswith("not a DICOM file")
    assert reasons["JPEGLSNearLossless_08.dcm"].startswith("no Study Instance UID (0020,000D)")
    assert reasons["dicomdirtests/DICOMDIR"].startswith("a DICOMDIR")

    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def new_errors(entry: dict[str, str]) -> tuple[str, set[str]]:
        before = dciodvfy_errors(Path(entry["input"]), scratch)
        return entry["input"], dciodvfy_errors(Path(entry["output"]), scratch) - before

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as pool:
        worse = {name: errors for name, errors in pool.map(new_errors, written) if errors}
    assert worse == {}
    print(f"{len(inputs)} inputs, {report['counts']}, {time.perf_counter() - started:.1f} s")
