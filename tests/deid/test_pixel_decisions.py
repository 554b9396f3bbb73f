"""The same image gets the same pixel-cleaning decision whatever its transfer syntax.

Real images from pydicom-data (US1 in five encodings as shipped, lossless and lossy JPEG 2000
included) and transcodings made here with pydicom's own encoders. A decision is which rectangles
are blanked, from which source, and whether the image is held; what OCR reads inside a blanked
rectangle may differ by a letter after lossy compression and is not part of it.
"""

from __future__ import annotations

import copy
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from ingest.deid.pixels import clean_pixel_data, find_text_regions, scan_decision
from tests.deid.pixel_corpus import corpus_path
from tests.deid.test_pixels import rgb_us


def decision(ds: Dataset) -> tuple[bool, tuple[tuple[int, int, int, int, str], ...]]:
    findings = find_text_regions(ds)
    return findings.uncertain, tuple((r.x, r.y, r.width, r.height, r.source) for r in findings.regions)


def transcoded(ds: Dataset, syntax: str) -> Dataset:
    """``ds`` re-encoded in ``syntax`` and read back from bytes, as a receiver would see it."""
    out = copy.deepcopy(ds)
    if syntax in (RLELossless, JPEGLSLossless, JPEG2000Lossless):
        out.compress(syntax, generate_instance_uid=False)
    else:
        out.file_meta.TransferSyntaxUID = syntax
    buffer = BytesIO()
    out.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)


SYNTAXES = [ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless]


@pytest.mark.parametrize("name", ["data_store/US1_UNCR.dcm", "data_store/OBXXXX1A.dcm", "deid/ultrasounds/RGB_IMAGE.dcm"])
def test_a_real_image_gets_one_decision_in_every_lossless_transfer_syntax(name: str) -> None:
    original = dcmread(corpus_path(name))
    expected = decision(original)
    assert expected[1], "the image carries text: the decision must blank something"
    for syntax in SYNTAXES:
        assert decision(transcoded(original, syntax)) == expected, syntax.name


def test_a_synthetic_ultrasound_gets_one_decision_and_the_same_cleaned_pixels_in_every_syntax() -> None:
    original = rgb_us().ds
    expected = decision(original)
    reference = clean_pixel_data(original).dataset.pixel_array
    for syntax in SYNTAXES:
        copy_ = transcoded(original, syntax)
        assert decision(copy_) == expected, syntax.name
        assert np.array_equal(clean_pixel_data(copy_).dataset.pixel_array, reference), syntax.name


@pytest.mark.parametrize(
    "family",
    [
        ["data_store/US1_UNCR.dcm", "data_store/US1_UNCI.dcm", "data_store/US1_J2KR.dcm", "data_store/US1_J2KI.dcm", "pydicom/examples_jpeg2k.dcm"],
        ["data_store/OBXXXX1A.dcm", "data_store/OBXXXX1A_expb.dcm", "data_store/OBXXXX1A_rle.dcm"],
        ["data_store/gdcm-US-ALOKA-16.dcm", "data_store/gdcm-US-ALOKA-16_big.dcm"],
        ["data_store/emri_small.dcm", "data_store/emri_small_RLE.dcm", "data_store/emri_small_big_endian.dcm",
         "data_store/emri_small_jpeg_2k_lossless.dcm", "data_store/emri_small_jpeg_ls_lossless.dcm"],
    ],
)
def test_the_shipped_encodings_of_one_image_get_one_decision(family: list[str]) -> None:
    """Lossy JPEG 2000 (US1_J2KI, US1_UNCI: decoded from it) and big endian included."""
    datasets = [dcmread(corpus_path(name)) for name in family]
    scans = {scan_decision(ds) for ds in datasets}
    assert len(scans) == 1, scans
    if next(iter(scans))[0]:
        decisions = {name: decision(ds) for name, ds in zip(family, datasets, strict=True)}
        assert len(set(decisions.values())) == 1, decisions


def test_cleaned_big_endian_is_the_cleaned_little_endian(tmp_path: Path) -> None:
    big = dcmread(corpus_path("data_store/OBXXXX1A_expb.dcm"))
    little = dcmread(corpus_path("data_store/OBXXXX1A.dcm"))
    cleaned_big, cleaned_little = clean_pixel_data(big), clean_pixel_data(little)
    assert cleaned_big.dataset.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    path = tmp_path / "big.dcm"
    cleaned_big.dataset.save_as(path, enforce_file_format=True)
    assert np.array_equal(dcmread(path).pixel_array, cleaned_little.dataset.pixel_array)
    assert cleaned_big.changed_fraction == cleaned_little.changed_fraction > 0
