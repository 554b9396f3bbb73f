"""A teaching case exported for a talk, end to end: a TCE export (CT stack, MR, a 30-frame
ultrasound cine, ATFI report, KOS manifest) arrives through the real DICOM intake, then

* the PowerPoint opens with python-pptx, holds the answers in its speaker notes and not on its
  slides, and LibreOffice turns it into a PDF whose image pages are not blank;
* the cine exports as H.264 MP4 that ffprobe counts at 30 frames (and as AVI), a stack as one frame
  an image;
* the JPEGs decode and follow the series' saved window;
* no export holds the contributor's name or GMC number, the exporter, or any patient name, ID or
  UID of the source (PPTX members unpacked);
* someone without the view right gets 404 from each route, as for a missing case."""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pptx import Presentation
from pydicom import dcmread
from pynetdicom import AE, build_context
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from pydicom.uid import generate_uid
from sqlalchemy import select

from archive.models import AuditEvent, Case, Series
from export.presentation import split_text
from ingest.tce.atfi import TeachingFileInfo

from .. import dicom_data
from ..conftest import login
from ..peers import LiveServer
from ..senders import register_ae

TITLE = "Abdominal pain and distension in an adult"
DIAGNOSIS = "Pneumatosis intestinalis"
DIFFERENTIAL = "Ischaemic bowel; pseudopneumatosis"
CODE = ("I10", "K63.8", "Other specified diseases of intestine")
DISCUSSION = " ".join(f"Point {n} of the discussion about benign and life-threatening causes." for n in range(40))
AUTHOR, AUTHOR_GMC = "Jones^Ann^^Dr", "7000001"  # alice's GMC: the case files into her folder


@dataclass
class Exported:
    case_id: int
    ct_series: int  # three CT images, one series
    mr_series: int
    us_series: int  # one 30-frame ultrasound cine
    ct_values: np.ndarray  # the first CT image's modality values (HU)
    identifiers: list[str]  # what no export may contain


def _stack(names: list[str]) -> list[Dataset]:
    """One study: the first file three times as one series (a stack), then the others."""
    images = dicom_data.study(names)
    stack_uid = generate_uid()
    first = images[0]
    copies = []
    for number in (2, 3):
        copy = _copy(first)
        copy.SOPInstanceUID = copy.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        copy.InstanceNumber = number
        copies.append(copy)
    for ds in (first, *copies):
        ds.SeriesInstanceUID = stack_uid
    return [first, *copies, *images[1:]]


def _copy(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)


def _arrive(casebank, datasets: list[Dataset]) -> None:
    """C-STORE from a trusted PACS, each object in its own transfer syntax (the cine stays JPEG)."""
    with LiveServer(casebank) as live:
        register_ae(casebank, "PACS1", "pacs", host="127.0.0.1")
        ae = AE(ae_title="PACS1")
        contexts = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}
        ae.requested_contexts = [build_context(sop_class, syntax) for sop_class, syntax in sorted(contexts)]
        assoc = ae.associate("127.0.0.1", live.dicom_port, ae_title=live.ae_title)
        assert assoc.is_established
        try:
            assert all(assoc.send_c_store(ds).Status == 0 for ds in datasets)
        finally:
            assoc.release()


@pytest.fixture
def exported(casebank, make_user) -> Exported:
    make_user("alice")
    make_user("bob")
    images = _stack(["CT_small.dcm", "MR_small.dcm", "examples_ybr_color.dcm"])
    info = TeachingFileInfo(
        author_name=AUTHOR, author_gmc=AUTHOR_GMC, affiliation="St Elsewhere", abstract=TITLE,
        history="Abdominal pain and distension for two days.", findings="Intramural gas in the small bowel wall.",
        discussion=DISCUSSION, differential=DIFFERENTIAL, diagnosis=DIAGNOSIS, codes=(CODE,),
    )
    report, manifest = dicom_data.tce_export(images, info)
    _arrive(casebank, [*images, report, manifest])
    with casebank.database.session() as session:
        case = session.scalars(select(Case)).one()
        assert case.author_gmc == AUTHOR_GMC and case.diagnosis == DIAGNOSIS
        series = {s.series_instance_uid: s.id for s in session.scalars(select(Series))}
        author_name = case.author_name
    identifiers = {AUTHOR_GMC, "Jones", author_name, "St Elsewhere", "Dr Alice", "alice@hospital.example"}
    for ds in (*images, report, manifest):
        identifiers |= {str(ds.PatientName), str(ds.PatientID), ds.StudyInstanceUID, ds.SeriesInstanceUID,
                        ds.SOPInstanceUID}
    identifiers |= {"CompressedSamples", "JFK IMAGING"}  # the pydicom files' own patient and institution
    return Exported(case.id, series[images[0].SeriesInstanceUID], series[images[3].SeriesInstanceUID],
                    series[images[4].SeriesInstanceUID], apply_modality_lut(images[0].pixel_array, images[0]),
                    sorted(i for i in identifiers if i))


def _no_identifier(data: bytes, identifiers: list[str], what: str) -> None:
    for identifier in identifiers:
        for encoding in ("utf-8", "utf-16-le"):
            assert identifier.encode(encoding) not in data, f"{what} holds {identifier!r}"


def _scan_export(data: bytes, identifiers: list[str], what: str) -> None:
    _no_identifier(data, identifiers, what)
    if data[:2] == b"PK":  # pptx and zip: every member unpacked too
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                _no_identifier(member.filename.encode(), identifiers, f"{what}: name {member.filename}")
                _scan_export(archive.read(member), identifiers, f"{what}:{member.filename}")


def _ffprobe(path: Path) -> dict:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,width,height,nb_frames,nb_read_frames,r_frame_rate,pix_fmt", "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=60,
    )
    return json.loads(probe.stdout)["streams"][0]


def _slide_text(slide) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(shape.text_frame.text for shape in slide.shapes if shape.has_text_frame)


def test_powerpoint_keeps_the_answers_in_the_notes_and_renders_in_libreoffice(exported, client, tmp_path):
    login(client, "alice")
    response = client.get(f"/api/cases/{exported.case_id}/export/pptx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation")
    assert f'filename="case-{exported.case_id}.pptx"' in response.headers["content-disposition"]
    _scan_export(response.content, exported.identifiers, "pptx")

    deck = Presentation(io.BytesIO(response.content))
    assert deck.core_properties.author == deck.core_properties.last_modified_by == "Casebank"
    slides = list(deck.slides)
    texts = [_slide_text(s) for s in slides]
    assert texts[0].startswith(TITLE)
    assert texts[1].startswith("History") and "two days" in texts[1]
    # the manifest's five images (three CT, MR, US), never the report or manifest
    pictures = [s for s in slides if any(shape.shape_type == 13 for shape in s.shapes)]
    assert len(pictures) == 5
    assert [_slide_text(s) for s in pictures] == [
        "CT · series 1 · image 1 of 3", "CT · series 1 · image 2 of 3", "CT · series 1 · image 3 of 3",
        "MR · series 2 · image 1 of 1", "US · series 3 · image 1 of 1"]
    assert any(t.startswith("Findings") for t in texts)
    discussion = [t for t in texts if t.startswith("Discussion")]
    assert len(discussion) == len(split_text(DISCUSSION)) > 1 and discussion[0].startswith("Discussion (1/")
    for slide, text in zip(slides, texts):
        assert DIAGNOSIS.lower() not in text.lower() and "pseudopneumatosis" not in text.lower()
        assert CODE[1] not in text
        notes = slide.notes_slide.notes_text_frame.text
        assert f"Diagnosis: {DIAGNOSIS}" in notes and DIFFERENTIAL in notes
        assert f"{CODE[0]} {CODE[1]} — {CODE[2]}" in notes

    pptx = tmp_path / "case.pptx"
    pptx.write_bytes(response.content)
    subprocess.run(
        ["soffice", f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless", "--convert-to", "pdf",
         "--outdir", str(tmp_path), str(pptx)],
        check=True, capture_output=True, timeout=180, env={**os.environ, "HOME": str(tmp_path)},
    )
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(tmp_path / "case.pdf"), str(tmp_path / "page")],
                   check=True, capture_output=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(slides)
    first_picture = slides.index(pictures[0])
    for index in (first_picture, slides.index(pictures[-1])):
        grey = np.asarray(Image.open(pages[index]).convert("L"), dtype=np.float64)
        assert grey.std() > 20, f"page {index + 1} looks blank (std {grey.std():.1f})"
    text_page = np.asarray(Image.open(pages[1]).convert("L"), dtype=np.float64)
    assert text_page.std() > 5  # the history's words are drawn


def test_cine_and_stack_movies(exported, client, tmp_path):
    login(client, "alice")
    base = f"/api/cases/{exported.case_id}/export/mp4"
    mp4 = client.get(base, params={"series": exported.us_series})
    assert mp4.status_code == 200, mp4.text
    assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"
    _scan_export(mp4.content, exported.identifiers, "mp4")
    (tmp_path / "cine.mp4").write_bytes(mp4.content)
    stream = _ffprobe(tmp_path / "cine.mp4")
    assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
    assert int(stream["nb_frames"]) == int(stream["nb_read_frames"]) == 30
    assert stream["r_frame_rate"] == "30/1"  # Frame Time 33.333 ms
    assert (stream["width"], stream["height"]) == (320, 240)

    avi = client.get(base, params={"series": exported.us_series, "format": "avi"})
    assert avi.status_code == 200 and avi.headers["content-type"] == "video/x-msvideo"
    _scan_export(avi.content, exported.identifiers, "avi")
    (tmp_path / "cine.avi").write_bytes(avi.content)
    assert int(_ffprobe(tmp_path / "cine.avi")["nb_read_frames"]) == 30

    stack = client.get(base, params={"series": exported.ct_series})
    assert stack.status_code == 200, stack.text
    _scan_export(stack.content, exported.identifiers, "stack mp4")
    (tmp_path / "stack.mp4").write_bytes(stack.content)
    stream = _ffprobe(tmp_path / "stack.mp4")
    assert int(stream["nb_read_frames"]) == 3 and stream["r_frame_rate"] == "10/1"
    assert stream["width"] % 2 == 0 and stream["height"] % 2 == 0

    single = client.get(base, params={"series": exported.mr_series})
    assert single.status_code == 422 and single.headers["content-type"].startswith("application/problem+json")
    assert "single image" in single.json()["detail"]
    assert client.get(base, params={"series": exported.us_series, "format": "gif"}).status_code == 422
    assert client.get(base).status_code == 422  # the series is required


def _jpegs(response) -> dict[str, Image.Image]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: Image.open(io.BytesIO(archive.read(name))) for name in archive.namelist()}


def test_jpegs_follow_the_saved_window_and_crop(exported, client, casebank):
    login(client, "alice")
    base = f"/api/cases/{exported.case_id}/export/jpeg"
    keys = _jpegs(client.get(base))
    case = exported.case_id
    assert sorted(keys) == sorted([f"case-{case}-series-1-image-{k}.jpg" for k in (1, 2, 3)]
                                  + [f"case-{case}-series-2-image-1.jpg", f"case-{case}-series-3-image-1.jpg"])
    for image in keys.values():
        image.load()
        assert image.format == "JPEG" and not image.info.get("exif") and image.mode in ("L", "RGB")
    cine = _jpegs(client.get(base, params={"series": exported.us_series}))  # every frame of the cine
    assert sorted(cine) == sorted(f"case-{case}-series-3-image-{k}.jpg" for k in range(1, 31))

    before = np.asarray(keys[f"case-{case}-series-1-image-1.jpg"], dtype=np.float64)
    assert before.shape == (128, 128)
    saturated_before = np.mean((before < 8) | (before > 247))
    # a narrow window at the median of the cropped region, saved for the CT series through the
    # viewer's API: nearly every pixel goes to black or white, about half each
    center = float(np.median(exported.ct_values[32:80, 16:80]))
    display = {"window_center": center, "window_width": 4.0, "crop": {"x": 16.0, "y": 32.0, "width": 64.0, "height": 48.0}}
    assert client.put(f"/api/series/{exported.ct_series}/display", json=display).status_code == 200
    after_zip = _jpegs(client.get(base, params={"series": exported.ct_series}))
    assert sorted(after_zip) == [f"case-{case}-series-1-image-{k}.jpg" for k in (1, 2, 3)]
    after = np.asarray(after_zip[f"case-{case}-series-1-image-1.jpg"], dtype=np.float64)
    assert after.shape == (48, 64)  # the saved crop
    saturated_after = np.mean((after < 8) | (after > 247))
    assert saturated_before < 0.5 < 0.9 < saturated_after, (saturated_before, saturated_after)
    assert 0.3 < np.mean(after > 247) < 0.7 and after.std() > before.std()
    source = exported.ct_values[32:80, 16:80]  # the same pixels: white exactly where above the window
    assert np.mean((after > 127) == (source > center)) > 0.95
    _scan_export(client.get(base).content, exported.identifiers, "jpeg zip")
    _scan_export(client.get(base, params={"series": exported.us_series}).content, exported.identifiers, "cine zip")
    refused = client.get(base, params={"series": 999999})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    with casebank.database.session() as session:
        formats = [e.detail["format"] for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "case.exported").order_by(AuditEvent.id))]
    assert formats == ["jpeg"] * 5


def test_no_view_right_is_404_on_every_export(exported, client):
    login(client, "bob")
    case = exported.case_id
    for path, params in ((f"/api/cases/{case}/export/pptx", {}), (f"/api/cases/{case}/export/jpeg", {}),
                         (f"/api/cases/{case}/export/jpeg", {"series": exported.ct_series}),
                         (f"/api/cases/{case}/export/mp4", {"series": exported.us_series}),
                         ("/api/cases/999999/export/pptx", {})):
        response = client.get(path, params=params)
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "Jones" not in response.text and AUTHOR_GMC not in response.text
