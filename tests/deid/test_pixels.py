"""Clean Pixel Data on real pydicom test images and on images with planted burned-in text.

Planted text is drawn with PIL onto realistic backgrounds (speckle, a bright "body"), so every
text pixel is known: the tests check that each one is inside a found region, that it is black in
every frame after cleaning, that OCR (run again, independently) reads none of the planted
identifiers, and that no pixel outside the regions changed.
"""

from __future__ import annotations

import copy
import re
import stat
import sys
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import pytesseract
from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
)

from ingest.deid import pixels
from ingest.deid.pixels import (
    PER_FRAME_LIMIT,
    PixelCleaningFailed,
    PixelFindings,
    Region,
    RegionTemplate,
    TemplateError,
    changed_fraction,
    clean_pixels,
    find_text_regions,
    header_identifiers,
    load_templates,
    matching_templates,
    merge_regions,
    needs_pixel_cleaning,
)

PLANTED = "SMITH^JOHN 1234567 01/02/1960"
PLANTED_TOKENS = ("SMITH", "JOHN", "1234567", "01021960")
"""The planted identifiers as OCR shows them: per person-name component (the ``^`` is misread
or splits the name) and with punctuation dropped."""


def normalised(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def pydicom_file(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is not installed"
    return dcmread(path)


def decoded(ds: Dataset) -> np.ndarray:
    """All frames, with a frame axis, YBR as RGB (what a viewer shows)."""
    arr, _ = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, as_rgb=True)
    single = arr.ndim == (3 if ds.SamplesPerPixel > 1 else 2)
    return arr[np.newaxis] if single else arr


def region_mask(regions, rows: int, columns: int) -> np.ndarray:
    mask = np.zeros((rows, columns), dtype=bool)
    for region in regions:
        mask[region.y : region.y1, region.x : region.x1] = True
    return mask


def ocr_words(gray: np.ndarray) -> list[str]:
    """An independent OCR read of one 8-bit frame: upscaled (3x for small frames, else 2x),
    then thresholded at 200 and inverted, and separately just inverted (tesseract binarises)."""
    scale = 3 if max(gray.shape) <= 400 else 2
    image = Image.fromarray(gray).resize((gray.shape[1] * scale, gray.shape[0] * scale), Image.Resampling.BICUBIC)
    pixels = np.asarray(image)
    words = []
    for page in (np.where(pixels >= 200, 0, 255).astype(np.uint8), 255 - pixels):
        words += pytesseract.image_to_string(Image.fromarray(page), config="--psm 11").split()
    return words


def frame_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3:
        frame = frame.max(axis=-1)
    frame = frame.astype(np.float64)
    return np.round((frame - frame.min()) * 255 / max(np.ptp(frame), 1)).astype(np.uint8)


def planted_tokens_read(words: list[str], *, slack: int = 0) -> set[str]:
    """The planted tokens found in OCR words, each allowed ``slack`` misread characters."""

    def near(token: str, word: str) -> bool:
        return any(
            sum(a != b for a, b in zip(token, word[i : i + len(token)])) <= slack
            for i in range(len(word) - len(token) + 1)
        )

    return {token for token in PLANTED_TOKENS for word in words if near(token, normalised(word))}


# --- Synthetic images ---------------------------------------------------------------------


@dataclass
class Planted:
    ds: Dataset
    text_mask: np.ndarray
    """True where planted text was drawn (same in every frame unless per-frame masks differ)."""
    frame_masks: list[np.ndarray] | None = None


def draw_text(shape: tuple[int, int], lines: list[tuple[tuple[int, int], str]], size: int) -> np.ndarray:
    mask = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(mask)
    font = ImageFont.load_default(size=size)
    for position, text in lines:
        draw.text(position, text, fill=255, font=font)
    return np.asarray(mask) > 127


def planted_lines(x: int, y: int, step: int) -> list[tuple[tuple[int, int], str]]:
    name, patient_id, birth = PLANTED.split()
    return [((x, y), name), ((x, y + step), patient_id), ((x, y + 2 * step), birth)]


def image_dataset(arr: np.ndarray, photometric: str, bits_stored: int, modality: str, sop_class: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientName = "SMITH^JOHN"
    ds.PatientID = "1234567"
    ds.PatientBirthDate = "19600201"
    ds.set_pixel_data(arr, photometric, bits_stored)
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def speckle_with_body(rng: np.random.Generator, rows: int, columns: int, dark: int, body: tuple[int, int], dtype) -> np.ndarray:
    arr = rng.integers(0, dark, (rows, columns)).astype(dtype)
    yy, xx = np.mgrid[:rows, :columns]
    disk = (yy - rows * 0.6) ** 2 + (xx - columns / 2) ** 2 < (rows * 0.3) ** 2
    arr[disk] = rng.integers(*body, int(disk.sum())).astype(dtype)
    return arr


def mono8_512() -> Planted:
    rng = np.random.default_rng(1)
    arr = speckle_with_body(rng, 512, 512, 70, (60, 170), np.uint8)
    mask = draw_text(arr.shape, planted_lines(20, 20, 30), 22)
    arr[mask] = 255
    ds = image_dataset(arr, "MONOCHROME2", 8, "CT", CTImageStorage)
    ds.BurnedInAnnotation = "YES"
    return Planted(ds, mask)


def mono16_256() -> Planted:
    rng = np.random.default_rng(2)
    arr = speckle_with_body(rng, 256, 256, 900, (1000, 2600), np.uint16)
    mask = draw_text(arr.shape, planted_lines(8, 8, 20), 14)
    arr[mask] = 4095
    ds = image_dataset(arr, "MONOCHROME2", 12, "DX", "1.2.840.10008.5.1.4.1.1.1.1")
    return Planted(ds, mask)


def mono1_256() -> Planted:
    """MONOCHROME1: low values show white, so burned-in text is stored near 0."""
    rng = np.random.default_rng(6)
    arr = 4095 - speckle_with_body(rng, 256, 256, 700, (900, 2400), np.uint16)
    mask = draw_text(arr.shape, planted_lines(8, 8, 20), 14)
    arr[mask] = 0
    ds = image_dataset(arr, "MONOCHROME1", 12, "RF", "1.2.840.10008.5.1.4.1.1.12.2")
    return Planted(ds, mask)


def us_frame(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    """An ultrasound-like RGB frame: black, a speckled sector, a coloured depth scale."""
    frame = np.zeros((rows, columns, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:rows, :columns]
    apex_x, apex_y = columns // 2, rows // 6
    radius = np.hypot(xx - apex_x, yy - apex_y)
    angle = np.degrees(np.arctan2(xx - apex_x, yy - apex_y))
    sector = (radius < rows * 0.8) & (np.abs(angle) < 35) & (yy > apex_y)
    speckle = rng.gamma(1.5, 40, (rows, columns)).clip(0, 230).astype(np.uint8)
    frame[sector] = speckle[sector, np.newaxis]
    frame[rows // 3 : rows // 3 + 80, columns - 20 : columns - 12] = (230, 180, 40)
    return frame


def rgb_us(frames: int = 1, seed: int = 3) -> Planted:
    rng = np.random.default_rng(seed)
    rows, columns = 300, 400
    mask = draw_text((rows, columns), planted_lines(10, 8, 22), 16)
    stack = np.stack([us_frame(rng, rows, columns) for _ in range(frames)])
    stack[:, mask] = 255
    if frames == 1:
        ds = image_dataset(stack[0], "RGB", 8, "US", UltrasoundImageStorage)
    else:
        ds = image_dataset(stack, "RGB", 8, "US", UltrasoundMultiFrameImageStorage)
    return Planted(ds, mask)


def two_page_capture() -> Planted:
    """A two-frame secondary capture whose pages carry different names at the same place."""
    rows, columns = 200, 320
    first = draw_text((rows, columns), [((12, 12), "SMITH^JOHN"), ((12, 40), "1234567")], 18)
    second = draw_text((rows, columns), [((12, 12), "JONES^MARY"), ((12, 40), "7654321")], 18)
    stack = np.full((2, rows, columns), 20, dtype=np.uint8)
    stack[0][first] = 250
    stack[1][second] = 250
    ds = image_dataset(stack, "MONOCHROME2", 8, "OT", SecondaryCaptureImageStorage)
    return Planted(ds, first | second, [first, second])


def compressed(planted: Planted, transfer_syntax: str) -> Planted:
    ds = copy.deepcopy(planted.ds)
    ds.compress(transfer_syntax, generate_instance_uid=False)
    return Planted(ds, planted.text_mask, planted.frame_masks)


@cache
def findings_for(name: str) -> tuple[Planted, PixelFindings]:
    planted = SYNTHETIC[name]()
    return planted, find_text_regions(planted.ds)


SYNTHETIC = {
    "mono8_512": mono8_512,
    "mono16_256": mono16_256,
    "mono16_jpegls": lambda: compressed(mono16_256(), JPEGLSLossless),
    "mono1_256": mono1_256,
    "rgb_us": rgb_us,
    "rgb_us_cine_rle": lambda: compressed(rgb_us(frames=PER_FRAME_LIMIT + 4), RLELossless),
    "rgb_us_j2k": lambda: compressed(rgb_us(seed=5), JPEG2000Lossless),
    "two_page_capture": two_page_capture,
}


# --- Policy -------------------------------------------------------------------------------


@pytest.mark.parametrize("modality", ["US", "SC", "OT", "XA", "RF", "DX"])
def test_these_modalities_always_pass_through_pixel_cleaning(modality: str) -> None:
    ds = pydicom_file("CT_small.dcm")
    ds.Modality = modality
    assert needs_pixel_cleaning(ds)


def test_burned_in_annotation_yes_passes_through_pixel_cleaning() -> None:
    ds = pydicom_file("CT_small.dcm")
    assert not needs_pixel_cleaning(ds)
    ds.BurnedInAnnotation = "YES"
    assert needs_pixel_cleaning(ds)
    ds.BurnedInAnnotation = "NO"
    assert not needs_pixel_cleaning(ds)


def test_objects_without_pixel_data_need_no_pixel_cleaning() -> None:
    ds = pydicom_file("CT_small.dcm")
    del ds.PixelData
    ds.Modality = "US"
    assert not needs_pixel_cleaning(ds)


def test_ct_without_text_and_not_flagged_is_left_byte_identical() -> None:
    ds = pydicom_file("CT_small.dcm")
    before = ds.PixelData
    assert not needs_pixel_cleaning(ds)
    out = clean_pixels(ds, [])
    assert out.PixelData == before
    assert out.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert ds.PixelData is before


def test_compressed_pixel_data_with_nothing_to_blank_is_not_transcoded() -> None:
    ds = pydicom_file("examples_ybr_color.dcm")
    out = clean_pixels(ds, [])
    assert out.PixelData == ds.PixelData
    assert out.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert out.BurnedInAnnotation == "NO"


# --- Regions and templates as data ----------------------------------------------------------


def test_region_rejects_unknown_sources_and_empty_rectangles() -> None:
    with pytest.raises(ValueError, match="source"):
        Region(0, 0, 10, 10, "guess")
    with pytest.raises(ValueError, match="positive size"):
        Region(0, 0, 0, 10, "user")
    with pytest.raises(ValueError, match="x, y >= 0"):
        Region(-1, 0, 5, 5, "user")


def test_regions_are_clipped_to_the_image() -> None:
    assert Region(300, 200, 50, 50, "user").clipped(240, 320) == Region(300, 200, 20, 40, "user")
    assert Region(400, 0, 5, 5, "user").clipped(240, 320) is None


def test_overlapping_regions_merge_and_keep_their_words_once() -> None:
    merged = merge_regions(
        [Region(0, 0, 10, 10, "ocr", "SMITH"), Region(8, 2, 10, 10, "ocr", "SMITH JOHN"), Region(50, 50, 5, 5, "ocr", "x")]
    )
    assert merged == [Region(0, 0, 18, 12, "ocr", "SMITH JOHN"), Region(50, 50, 5, 5, "ocr", "x")]


def test_every_packaged_template_is_complete_and_inside_its_image() -> None:
    templates = load_templates()
    assert len(templates) >= 10
    for template in templates:
        assert template.source, template.name
        assert template.manufacturer or template.model, template.name
        assert template.regions, template.name
        for region in template.regions:
            assert region.source == "template"
            if template.columns is not None:
                assert region.x1 <= template.columns, template.name
            if template.rows is not None:
                assert region.y1 <= template.rows, template.name


@pytest.mark.parametrize(
    ("name", "template"),
    [
        ("examples_ybr_color.dcm", "SonoSite Turbo 320x240: patient name line"),
        ("examples_rgb_color.dcm", "GE LOGIQ 700 320x240: top banner"),
        ("examples_jpeg2k.dcm", "GE LOGIQ 700 640x480: top banner"),
        ("examples_palette.dcm", "Philips CX50 800x350: header bar"),
    ],
)
def test_real_ultrasound_headers_match_their_template(name: str, template: str) -> None:
    assert [t.name for t in matching_templates(pydicom_file(name))] == [template]


def test_templates_do_not_match_other_devices_or_sizes() -> None:
    assert matching_templates(pydicom_file("CT_small.dcm")) == []
    ds = pydicom_file("examples_ybr_color.dcm")
    ds.Rows = 480
    assert matching_templates(ds) == []


def test_malformed_template_file_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "regions.json"
    path.write_text('{"templates": [{"name": "broken", "match": {"rows": 10}, "regions": [[0, 0, 5, 5]]}]}')
    with pytest.raises(TemplateError, match="broken"):
        load_templates(path)
    path.write_text('{"templates": [{"name": "bad box", "match": {"model": "X"}, "regions": [[0, 0, 5]]}]}')
    with pytest.raises(TemplateError, match="bad box"):
        load_templates(path)


def test_site_templates_replace_the_packaged_ones() -> None:
    ds = pydicom_file("examples_rgb_color.dcm")
    site = RegionTemplate("site: LOGIQ lower strip", (Region(0, 220, 320, 20, "template", "site"),), "site", model="LOGIQ")
    findings = find_text_regions(ds, templates=[site])
    assert Region(0, 220, 320, 20, "template", "site") in findings.regions
    assert not any(r.text.startswith("GE LOGIQ 700") for r in findings.regions)


def test_header_identifiers_split_person_names_and_write_dates_as_screens_do() -> None:
    ds = Dataset()
    ds.PatientName = "SMITH^JOHN"
    ds.PatientID = "1234567"
    ds.PatientBirthDate = "19600201"
    ids = header_identifiers(ds)
    assert ids["SMITH"] == ids["JOHN"] == "PatientName"
    assert ids["1234567"] == "PatientID"
    assert "01021960" in ids and "02011960" in ids


# --- Planted text: found, blanked, unreadable ------------------------------------------------


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_ocr_boxes_cover_every_planted_text_pixel(name: str) -> None:
    planted, findings = findings_for(name)
    assert findings.needs_cleaning
    rows, columns = planted.text_mask.shape
    covered = region_mask(findings.regions, rows, columns)
    assert not (planted.text_mask & ~covered).any(), findings.reason
    # a cine's moving scan area is found, and the annotation outside it masked
    assert {r.source for r in findings.regions} == ({"ocr", "region"} if name == "rgb_us_cine_rle" else {"ocr"})


def test_a_cines_scan_area_is_found_from_motion_and_the_rest_masked() -> None:
    planted, findings = findings_for("rgb_us_cine_rle")
    assert findings.scan_area is not None and findings.scan_area.source == "cine motion"
    assert "scan area from cine motion" in findings.reason
    (x, y, w, h), = findings.scan_area.rectangles
    rows, columns = planted.text_mask.shape
    assert 0.3 < w * h / (rows * columns) < 0.8  # the fan's bounding box, not the whole frame
    masked = region_mask([r for r in findings.regions if r.source == "region"], rows, columns)
    assert not masked[y : y + h, x : x + w].any()  # nothing inside the scan area is masked
    assert masked[:y].all() and masked[:, : x].all()


@pytest.mark.parametrize("name", ["mono8_512", "mono16_256", "mono16_jpegls", "mono1_256", "rgb_us", "rgb_us_j2k"])
def test_ocr_reads_the_planted_identifiers(name: str) -> None:
    _, findings = findings_for(name)
    words = " ".join(r.text for r in findings.regions).split()
    assert planted_tokens_read(words, slack=1) == set(PLANTED_TOKENS), findings.reason
    assert "PatientName" in findings.reason and "PatientID" in findings.reason


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_after_cleaning_planted_text_is_black_and_unreadable_in_every_frame(name: str) -> None:
    planted, findings = findings_for(name)
    out = clean_pixels(planted.ds, findings.regions)
    frames = decoded(out)
    black = frames.max() if out.PhotometricInterpretation == "MONOCHROME1" else frames.min()
    for index, frame in enumerate(frames):
        assert (frame[planted.text_mask] == black).all(), f"frame {index + 1}"
        if out.PhotometricInterpretation == "MONOCHROME1":
            frame = frame.max() - frame
        assert planted_tokens_read(ocr_words(frame_gray(frame)), slack=1) == set(), f"frame {index + 1}"
    assert out.BurnedInAnnotation == "NO"


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_pixels_outside_the_regions_are_unchanged(name: str) -> None:
    planted, findings = findings_for(name)
    before = decoded(planted.ds)
    after = decoded(clean_pixels(planted.ds, findings.regions))
    outside = ~region_mask(findings.regions, *planted.text_mask.shape)
    assert after.shape == before.shape
    assert np.array_equal(after[:, outside], before[:, outside])
    assert not np.array_equal(after, before)


def test_finding_and_cleaning_leave_their_input_alone() -> None:
    planted, findings = findings_for("mono8_512")
    before = bytes(planted.ds.PixelData)
    find_text_regions(planted.ds)
    clean_pixels(planted.ds, findings.regions)
    assert planted.ds.PixelData == before
    assert planted.ds.BurnedInAnnotation == "YES"


def test_clear_planted_text_is_certain() -> None:
    for name in ("mono8_512", "rgb_us", "two_page_capture"):
        _, findings = findings_for(name)
        assert not findings.uncertain, findings.reason


def test_pages_with_different_text_are_each_read() -> None:
    planted, findings = findings_for("two_page_capture")
    words = {normalised(w) for r in findings.regions for w in r.text.split()}
    assert {"JOHN", "1234567", "JONES", "MARY"} <= {t for t in ("JOHN", "1234567", "JONES", "MARY") for w in words if t in w}
    assert "frame 1" in findings.reason and "frame 2" in findings.reason


def test_a_long_cine_is_read_through_its_projections() -> None:
    _, findings = findings_for("rgb_us_cine_rle")
    assert "minimum projection" in findings.reason and "maximum projection" in findings.reason


def test_compressed_multiframe_input_is_stored_uncompressed_and_every_frame_cleaned() -> None:
    planted, findings = findings_for("rgb_us_cine_rle")
    assert planted.ds.file_meta.TransferSyntaxUID == RLELossless
    out = clean_pixels(planted.ds, findings.regions)
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert not out["PixelData"].is_undefined_length
    assert out.NumberOfFrames == PER_FRAME_LIMIT + 4
    assert len(out.PixelData) == out.NumberOfFrames * out.Rows * out.Columns * 3
    reread = roundtrip(out)
    frames = reread.pixel_array
    assert frames.shape[0] == PER_FRAME_LIMIT + 4
    assert (frames[:, planted.text_mask] == 0).all()


def roundtrip(ds: Dataset) -> Dataset:
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)


# --- Real images ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ybr_cine() -> tuple[Dataset, PixelFindings]:
    ds = pydicom_file("examples_ybr_color.dcm")
    return ds, find_text_regions(ds)


def test_real_jpeg_cine_name_is_blanked_in_all_30_frames(ybr_cine) -> None:
    ds, findings = ybr_cine
    assert needs_pixel_cleaning(ds) and findings.needs_cleaning
    assert ds.file_meta.TransferSyntaxUID.is_compressed and ds.PhotometricInterpretation == "YBR_FULL_422"
    out = clean_pixels(ds, findings.regions)
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert out.PhotometricInterpretation == "RGB" and out.PlanarConfiguration == 0
    assert out.NumberOfFrames == 30 and not out["PixelData"].is_undefined_length
    assert out.LossyImageCompression == "01"
    assert out.SOPInstanceUID == ds.SOPInstanceUID
    before, after = decoded(ds), roundtrip(out).pixel_array
    name_box = (slice(2, 12), slice(12, 29))  # "PLA", the patient's name, measured in frame 1
    assert before[(slice(None), *name_box)].max() > 90
    assert (after[(slice(None), *name_box)] == 0).all()
    outside = ~region_mask(findings.regions, 240, 320)
    assert np.array_equal(after[:, outside], before[:, outside])


def test_real_jpeg_cine_side_annotations_are_masked_outside_the_moving_scan(ybr_cine) -> None:
    ds, findings = ybr_cine
    # its Ultrasound Regions describe the 640x480 original, not this 320x240 copy
    assert "regions describe a larger image" in findings.reason
    assert findings.scan_area is not None and findings.scan_area.source == "cine motion"
    assert {r.source for r in findings.regions} <= {"template", "region", "ocr"}
    masked = region_mask(findings.regions, 240, 320)
    x, y, w, h = findings.scan_area.rectangles[0]
    # the sector as drawn spans (42, 22)-(298, 202): the dark flanks move faintly but are kept
    assert x <= 42 and y <= 22 and x + w >= 298 and y + h >= 202
    assert x >= 34 and x + w <= 306 and y + h <= 210
    assert masked[30:140, x + w : 320].all()  # the settings column on the right ("MI", "TIS")
    assert masked[225:240, 80:260].all()  # the menu bar at the bottom
    assert not masked[y + 10 : y + h - 10, x + 10 : x + w - 10].any()  # the heart is untouched


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "examples_jpeg2k.dcm"])
def test_real_institution_name_is_read_then_gone(name: str) -> None:
    ds = pydicom_file(name)
    findings = find_text_regions(ds)
    before = ocr_words(frame_gray(decoded(ds)[0]))
    assert {"BAPTIST", "MED", "CTR"} <= set(before)
    out = clean_pixels(ds, findings.regions)
    after = ocr_words(frame_gray(decoded(out)[0]))
    assert not {"BAPTIST", "CTR"} & {normalised(w) for w in after}
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert out.PhotometricInterpretation == "RGB"


def test_real_palette_image_loses_its_burned_in_patient_id_and_stays_palette() -> None:
    ds = pydicom_file("examples_palette.dcm")
    findings = find_text_regions(ds)
    assert "templates: Philips CX50 800x350: header bar" in findings.reason  # holds "11-05-25-142825", the Patient ID
    out = clean_pixels(ds, findings.regions)
    assert out.PhotometricInterpretation == "PALETTE COLOR"
    shown = apply_color_lut(out.pixel_array, out)
    assert (shown[:60] == shown[:60].min()).all()
    words = {normalised(w) for w in ocr_words(frame_gray(shown))}
    assert not any("142825" in w or "2011" in w for w in words)


def test_real_coloured_text_in_the_image_identifies_nobody_and_is_kept_unless_all_text_is_blanked() -> None:
    ds = pydicom_file("GDCMJ2K_TextGBR.dcm")
    findings = find_text_regions(ds)
    assert findings.regions == () and [k.text for k in findings.kept] == ["red", "green", "blue"]
    findings = find_text_regions(ds, blank_all_text=True)  # a profile may blank every word
    assert [r.text for r in findings.regions] == ["red", "green", "blue"]
    assert changed_fraction(findings.regions, 400, 400) < 0.35  # the three words (60 px high), not the picture
    out = clean_pixels(ds, findings.regions)
    assert not {"RED", "GREEN", "BLUE"} & {normalised(w) for w in ocr_words(frame_gray(decoded(out)[0]))}


# --- Uncertain, kept, failing closed ----------------------------------------------------------


def test_image_marked_yes_without_readable_text_is_uncertain() -> None:
    rows, columns = 256, 256
    arr = (np.add.outer(np.arange(rows), np.arange(columns)) // 8).astype(np.uint8)
    ds = image_dataset(arr, "MONOCHROME2", 8, "CT", CTImageStorage)
    ds.BurnedInAnnotation = "YES"
    findings = find_text_regions(ds)
    assert findings.regions == () and not findings.needs_cleaning
    assert findings.uncertain and "YES" in findings.reason


def test_orientation_label_is_kept_and_offered_in_the_preview() -> None:
    rng = np.random.default_rng(4)
    arr = speckle_with_body(rng, 512, 512, 70, (60, 170), np.uint8)
    name = draw_text(arr.shape, [((20, 20), "SMITH^JOHN")], 24)
    label = draw_text(arr.shape, [((420, 20), "LAT")], 24)
    arr[name | label] = 255
    dx = image_dataset(arr, "MONOCHROME2", 8, "DX", "1.2.840.10008.5.1.4.1.1.1.1")
    findings = find_text_regions(dx)
    assert [r.text for r in findings.kept] == ["LAT"]
    assert not (name & ~region_mask(findings.regions, 512, 512)).any()
    assert not (label & region_mask(findings.regions, 512, 512)).any()
    findings = find_text_regions(dx, blank_all_text=True)  # a profile may blank every word
    assert findings.kept == () and not (label & ~region_mask(findings.regions, 512, 512)).any()


def test_identifying_text_still_found_after_the_last_look_is_uncertain(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for tesseract that reads the patient's name in every new line it is shown."""
    from ingest.deid.text_lines import Word

    readings = []

    def reader(ds, view, lines):
        readings.append(len(lines))
        return [replace(line, words=(Word("SMITH", 95.0),)) for line in lines]

    monkeypatch.setattr(pixels, "_read", reader)
    monkeypatch.setattr(pixels, "find_lines", lambda view: [_line_at(20 * len(readings))])
    findings = find_text_regions(rgb_us().ds)
    assert len(readings) == 1 + pixels.VERIFY_ROUNDS
    assert findings.uncertain and "identifying text still found" in findings.reason


def _line_at(x: int):  # type: ignore[no-untyped-def]
    from ingest.deid.text_lines import TextLine

    return TextLine(x, 10, 14, 9, 5, "bright", flat=False, uniform=True)


def test_missing_tesseract_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    planted = rgb_us()
    with pytest.raises(PixelCleaningFailed, match="tesseract not found"):
        find_text_regions(planted.ds)


def test_tesseract_error_fails_closed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broken = tmp_path / "tesseract"
    broken.write_text("#!/bin/sh\necho 'Error opening data file eng.traineddata' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(broken))
    with pytest.raises(PixelCleaningFailed, match="OCR failed"):
        find_text_regions(rgb_us().ds)


def test_missing_ocr_wrapper_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytesseract", None)
    with pytest.raises(PixelCleaningFailed, match="pytesseract is not installed"):
        find_text_regions(rgb_us().ds)


def test_undecodable_frames_fail_closed() -> None:
    ds = pydicom_file("examples_ybr_color.dcm")
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 not a jpeg \xff\xd9"] * 30)
    with pytest.raises(PixelCleaningFailed, match="cannot be decoded") as error:
        find_text_regions(ds)
    assert ds.SOPInstanceUID in str(error.value)
    with pytest.raises(PixelCleaningFailed, match="cannot be decoded"):
        clean_pixels(ds, [Region(0, 0, 10, 10, "user")])


def test_big_endian_pixel_data_is_cleaned_like_little_endian_and_stored_little_endian() -> None:
    big, little = pydicom_file("MR_small_bigendian.dcm"), pydicom_file("MR_small.dcm")
    assert clean_pixels(big, []).PixelData == big.PixelData
    regions = [Region(0, 0, 8, 8, "user")]
    out_big, out_little = roundtrip(clean_pixels(big, regions)), roundtrip(clean_pixels(little, regions))
    assert out_big.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(out_big.pixel_array, out_little.pixel_array)
    assert (out_big.pixel_array[:8, :8] == little.pixel_array.min()).all()
    assert out_big.WindowCenter == little.WindowCenter and out_big.Rows == 64


def test_missing_pixel_data_fails_closed() -> None:
    ds = pydicom_file("CT_small.dcm")
    del ds.PixelData
    with pytest.raises(PixelCleaningFailed, match="no Pixel Data"):
        find_text_regions(ds)


def test_user_regions_are_blanked_like_any_other() -> None:
    ds = pydicom_file("CT_small.dcm")
    out = clean_pixels(ds, [Region(100, 100, 50, 50, "user", "added in the preview")])
    after, before = out.pixel_array, ds.pixel_array
    assert (after[100:, 100:] == before.min()).all()
    assert np.array_equal(after[:100], before[:100])
    assert out.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert out.BurnedInAnnotation == "NO"
