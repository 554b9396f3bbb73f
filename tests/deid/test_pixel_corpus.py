"""Clean Pixel Data on the real images of pydicom, pydicom-data and deid-data, against ground truth.

``pixel_truth.json`` holds, for every image that carries burned-in text, each text line's
rectangle, what it says and whether it identifies someone, measured by hand (see its
``_about``), and where the diagnostic image is. The tests check what a privacy officer and a
radiologist would: every identifying line is unreadable afterwards to an OCR pass of our own
that shares nothing with the detector (whole crops, both polarities, upscaled), in every frame;
inside the image at most 1% of the pixels changed; images without text, and images declared
free of it, come out byte for byte as they went in.
"""

from __future__ import annotations

import re
import warnings
from functools import cache

import numpy as np
import pytesseract
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, get_decoder

from ingest.deid.pixels import PixelCleaning, PixelCleaningFailed, clean_pixel_data, scan_decision
from tests.deid.pixel_corpus import TruthImage, TruthLine, corpus_path, load_truth, no_text_files

TRUTH = load_truth()
FILES = [(image, name) for image in TRUTH for name in image.files]
MAX_CHANGED_INSIDE = 0.01


def ids(value: object) -> str:
    return value[1] if isinstance(value, tuple) else str(value)


@cache
def read(name: str) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(corpus_path(name))


@cache
def cleaned(name: str) -> PixelCleaning:
    return clean_pixel_data(read(name))


def raw_frames(ds: Dataset) -> np.ndarray:
    """Every frame as stored values (colour as RGB), frame axis first."""
    arr, _ = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, as_rgb=True)
    return arr[np.newaxis] if int(ds.get("NumberOfFrames") or 1) == 1 else arr


def frames_of(ds: Dataset) -> np.ndarray:
    """Every frame as displayed, 8-bit grey (colour by its brightest channel), frame axis first."""
    arr = raw_frames(ds)
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    if arr.ndim == 4:
        arr = arr.max(axis=-1)
    arr = arr.astype(np.float64)
    low, high = arr.min(), arr.max()
    gray = np.round((arr - low) * 255 / max(high - low, 1)).astype(np.uint8)
    return 255 - gray if ds.PhotometricInterpretation == "MONOCHROME1" else gray


def tokens(text: str) -> list[str]:
    """The parts of a line worth looking for: letters and digits, three or more."""
    return [t for t in (re.sub(r"[^0-9A-Z]", "", w.upper()) for w in re.split(r"[\s,^/:.-]+", text)) if len(t) >= 3]


def ocr_crop(frame: np.ndarray, box: list[int]) -> str:
    """Our own reading of one line: the padded crop, 4x, thresholded both ways, single line."""
    x, y, w, h = box
    pad = max(4, h)
    crop = frame[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad]
    image = Image.fromarray(crop).resize((crop.shape[1] * 4, crop.shape[0] * 4), Image.Resampling.BICUBIC)
    pixels = np.asarray(image)
    texts = []
    for page in (255 - pixels, pixels, np.where(pixels > 127, 0, 255).astype(np.uint8)):
        texts.append(pytesseract.image_to_string(Image.fromarray(page), config="--psm 7"))
    return " ".join(texts)


def readable(tokens_: list[str], text: str) -> set[str]:
    """Tokens found in OCR text, allowing one misread character in tokens of five or more."""
    seen = re.sub(r"[^0-9A-Z]", "", text.upper())

    def near(token: str) -> bool:
        slack = 1 if len(token) >= 5 else 0
        return any(sum(a != b for a, b in zip(token, seen[i : i + len(token)])) <= slack
                   for i in range(len(seen) - len(token) + 1))

    return {t for t in tokens_ if near(t)}


def sample_frames(count: int) -> list[int]:
    return sorted({0, count // 2, count - 1})


def identifying_lines(image: TruthImage) -> list[TruthLine]:
    return [line for line in image.lines if line.identifying and tokens(line.text)]


IDENTIFIED = [(image, name) for image, name in FILES if identifying_lines(image)]
"""The files whose pixels carry a readable identifier: the ones the next two tests judge."""


@pytest.mark.parametrize("case", IDENTIFIED, ids=ids)
def test_the_image_is_scanned_and_cleaned_with_certainty(case: tuple[TruthImage, str]) -> None:
    _, name = case
    assert scan_decision(read(name))[0], name
    try:
        result = cleaned(name)
    except PixelCleaningFailed as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{name} held: {exc}")
    assert result.scanned and result.findings is not None and result.findings.regions


@pytest.mark.parametrize("case", IDENTIFIED, ids=ids)
def test_every_identifier_is_unreadable_afterwards_in_every_frame(case: tuple[TruthImage, str]) -> None:
    image, name = case
    lines = identifying_lines(image)
    before, after = frames_of(read(name)), frames_of(cleaned(name).dataset)
    assert after.shape == before.shape
    control = set()
    for index in sample_frames(before.shape[0]):
        for line in lines:
            wanted = tokens(line.text)
            control |= readable(wanted, ocr_crop(before[index], line.box))
            left = readable(wanted, ocr_crop(after[index], line.box))
            assert not left, f"{name} frame {index + 1}: {line.text!r} still reads {sorted(left)}"
            x, y, w, h = line.box
            assert np.ptp(after[index, y : y + h, x : x + w]) <= 8, f"{name} frame {index + 1}: {line.text!r} not blanked"
    assert control, f"{name}: our OCR reads none of the identifiers before cleaning, so this test proves nothing"


TEXT_IS_THE_PICTURE = {"data_store/mlut_18.dcm", "data_store/vlut_04.dcm"}
"""SMPTE test patterns: their caption ("SMPTE TEST PATTERN", "Rev. 3/1/91 Copyright 1983", a
date) sits in the footer band and is blanked; the pattern itself must stay."""


@pytest.mark.parametrize("name", sorted(TEXT_IS_THE_PICTURE))
def test_on_a_test_pattern_only_text_lines_change(name: str) -> None:
    image = next(i for i in TRUTH if name in i.files)
    before, after = raw_frames(read(name)), raw_frames(cleaned(name).dataset)
    changed = before != after
    text = np.zeros(changed.shape[1:], dtype=bool)
    for line in image.lines:
        x, y, w, h = line.box
        text[max(0, y - h) : y + 2 * h, max(0, x - h) : x + w + h] = True
    assert changed.any() and not changed[:, ~text].any()
    assert changed.mean() < 0.03


@pytest.mark.parametrize("case", [(i, n) for i, n in FILES if n not in TEXT_IS_THE_PICTURE], ids=ids)
def test_inside_the_image_at_most_one_percent_of_pixels_change(case: tuple[TruthImage, str]) -> None:
    image, name = case
    assert image.image_regions, f"{name}: the truth must say where the image is"
    before, after = raw_frames(read(name)), raw_frames(cleaned(name).dataset)
    diff = before != after
    if diff.ndim == 4:  # a pixel changed if any of its samples did
        diff = diff.any(axis=-1)
    inside = np.zeros(diff.shape[1:], dtype=bool)
    for x, y, w, h in image.image_regions:
        inside[y : y + h, x : x + w] = True
    identifying = np.zeros_like(inside)
    for line in image.lines:
        if line.identifying:  # identifiers inside the image are rightly blanked
            x, y, w, h = line.box
            identifying[max(0, y - h) : y + 2 * h, max(0, x - h) : x + w + h] = True
    judged = inside & ~identifying
    changed = diff[:, judged].mean()
    assert changed <= MAX_CHANGED_INSIDE, f"{name}: {changed:.2%} of the image's pixels changed"


@pytest.mark.parametrize("name", no_text_files())
def test_images_without_text_come_out_byte_for_byte(name: str) -> None:
    ds = read(name)
    result = cleaned(name)
    assert result.dataset.PixelData == ds.PixelData, result.reason
    assert result.findings is None or result.findings.regions == ()


@pytest.mark.parametrize("name", ["deid/animals/cat.dcm", "data_store/emri_small.dcm", "data_store/emri_small_RLE.dcm"])
def test_images_declared_free_of_burned_in_text_are_left_alone(name: str) -> None:
    ds = read(name)
    assert str(ds.BurnedInAnnotation) == "NO"
    result = cleaned(name)
    assert not result.scanned and "declared free" in result.reason
    assert result.dataset is ds and result.dataset.PixelData == ds.PixelData


def test_the_multi_frame_and_cine_files_are_in_the_corpus() -> None:
    """The every-frame test above means something only if cines are among the files."""
    frames = {name: int(read(name).get("NumberOfFrames") or 1) for _, name in FILES}
    assert sum(count > 1 for count in frames.values()) >= 4, frames
    assert max(frames.values()) >= 30
    assert len(IDENTIFIED) >= 20, "most corpus files carry an identifier the two identifier tests judge"
