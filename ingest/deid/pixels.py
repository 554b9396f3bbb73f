"""Clean Pixel Data (PS3.15 E.3.1): find burned-in text and blank it in every frame.

>>> findings = find_text_regions(dataset)  # doctest: +SKIP
>>> if findings.uncertain: hold_for_a_person(dataset, findings)  # doctest: +SKIP
>>> cleaned = clean_pixels(dataset, findings.regions)  # doctest: +SKIP

Text is found two ways and the results are joined: tesseract OCR over the decoded frames, and
templates kept as data (``data/pixel_regions.json``: manufacturer, model, modality and image
size to rectangles) for devices known to burn identifiers in at fixed places. Cleaning fails
closed: when OCR cannot run or errors, or a frame cannot be decoded, :class:`PixelCleaningFailed`
is raised, and when detection is doubtful the findings say ``uncertain`` with the reason; in
both cases the caller holds the image for a person instead of forwarding it.

Pixel data that needs no blanking is never decoded or re-encoded, so it stays byte-identical.
Blanked images are stored uncompressed (Explicit VR Little Endian when the input was
compressed): nothing here can re-encode JPEG without a second lossy generation.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, convert_color_space, get_decoder

TEMPLATES_FILE = "pixel_regions.json"

ALWAYS_CLEANED_MODALITIES = frozenset({"US", "SC", "OT", "XA", "RF", "DX"})
"""Modalities whose images pass through pixel cleaning whatever Burned In Annotation says."""
BLANK_ALL_TEXT_MODALITIES = frozenset({"US", "SC", "OT"})
"""Modalities where every detected word is blanked by default, even measurements and labels."""

REGION_SOURCES = frozenset({"ocr", "template", "user"})

LOW_CONFIDENCE = 50
"""OCR words read below this confidence (0-100) are blanked all the same (speckle and badly
read text look alike); only words read at least this surely count as text still found when the
regions are checked by reading again."""
VERIFY_ROUNDS = 2
"""How many times the image is read again with its regions blanked. Text still found after
the last reading makes the findings uncertain."""
KEEP_CONFIDENCE = 80
"""A word may be offered for keeping (not blanked by default) only when read at least this surely."""
MIN_TEXT_HEIGHT = 6
"""Boxes lower than this (pixels) hold no legible text (the smallest annotation fonts seen,
320x240 ultrasound, are 6 px high): OCR returns them for lines, edges and speckle."""
MAX_DOUBTFUL_HEIGHT = 1 / 6
"""Words read below :data:`LOW_CONFIDENCE` with boxes taller than this fraction of the image
are speckle or anatomy, not annotation; clearly read large text is kept whatever its size."""
PER_FRAME_LIMIT = 4
"""Multi-frame images with at most this many distinct frames are read frame by frame (pages of
a secondary capture can each carry different text at the same place); longer cines are read
through their minimum and maximum projections."""
BRIGHT_THRESHOLD = 200
"""Binarisation level (8-bit) of the pass that looks for bright overlay text only."""
OCR_CONFIG = "--psm 11"
"""Sparse text: burned-in annotation is scattered words, not paragraphs."""
OCR_TIMEOUT_S = 120
"""Seconds one tesseract run may take before the image is held (a 3000 px DX takes a few)."""
OCR_TARGET_SIZE = 1000
"""Frames are upscaled (2x-3x) towards this many pixels on their long side before OCR: small
annotation fonts (6-8 px) are read far better at 20 px and more."""

_HEADER_NAME_KEYWORDS = ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName")
_HEADER_ID_KEYWORDS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "PatientBirthDate", "StudyID")
MIN_NAME_PART, MIN_IDENTIFIER = 2, 3
"""Shorter header values match too much unrelated text (as in ``identifying_values.json``)."""


class PixelCleaningFailed(Exception):
    """Pixel cleaning could not be done safely; the caller holds the image for a person.

    The message names the image (SOP Instance UID) and the reason.
    """


class TemplateError(ValueError):
    """The template file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Region:
    """A rectangle of pixels to blank, the same in every frame.

    Attributes
    ----------
    x, y : int
        Top-left corner, in pixels from the image's top-left corner.
    width, height : int
        Size in pixels, both positive.
    source : str
        ``"ocr"``, ``"template"`` or ``"user"`` (added in the preview).
    text : str
        What OCR read inside (words joined by spaces), or the template name.
    """

    x: int
    y: int
    width: int
    height: int
    source: str
    text: str = ""

    def __post_init__(self) -> None:
        if self.source not in REGION_SOURCES:
            raise ValueError(f"region source {self.source!r} is not one of {sorted(REGION_SOURCES)}")
        if self.x < 0 or self.y < 0 or self.width <= 0 or self.height <= 0:
            raise ValueError(f"region ({self.x}, {self.y}, {self.width}, {self.height}) needs x, y >= 0 and a positive size")

    @property
    def x1(self) -> int:
        return self.x + self.width

    @property
    def y1(self) -> int:
        return self.y + self.height

    def overlaps(self, other: Region) -> bool:
        return self.x < other.x1 and other.x < self.x1 and self.y < other.y1 and other.y < self.y1

    def contains(self, other: Region) -> bool:
        return self.x <= other.x and self.y <= other.y and other.x1 <= self.x1 and other.y1 <= self.y1

    def clipped(self, rows: int, columns: int) -> Region | None:
        """This region cut to an image of ``rows`` x ``columns``; ``None`` when wholly outside."""
        x1, y1 = min(self.x1, columns), min(self.y1, rows)
        if self.x >= x1 or self.y >= y1:
            return None
        return replace(self, width=x1 - self.x, height=y1 - self.y)


@dataclass(frozen=True)
class PixelFindings:
    """What :func:`find_text_regions` found in one image.

    Attributes
    ----------
    needs_cleaning : bool
        There is at least one region to blank.
    regions : tuple of Region
        Template rectangles and padded, merged OCR word boxes; blanked by default.
    uncertain : bool
        Detection is doubtful: the image must be held for a person, never forwarded as is.
    reason : str
        What was read and how, and why it is uncertain; shown in the preview and kept for audit.
    kept : tuple of Region
        Outside US, SC and OT only: words that identify nobody (orientation labels,
        measurements, read with high confidence), offered for keeping and not blanked unless
        the user adds them.
    """

    needs_cleaning: bool
    regions: tuple[Region, ...]
    uncertain: bool
    reason: str
    kept: tuple[Region, ...] = ()


@dataclass(frozen=True)
class RegionTemplate:
    """Rectangles where one kind of device burns text in, from ``pixel_regions.json``.

    Every condition that is set must hold: ``manufacturer`` and ``model`` are case-insensitive
    substrings of Manufacturer and Manufacturer's Model Name, ``modality`` is exact, ``rows``
    and ``columns`` are the exact image size.
    """

    name: str
    regions: tuple[Region, ...]
    source: str
    manufacturer: str = ""
    model: str = ""
    modality: str = ""
    rows: int | None = None
    columns: int | None = None

    def matches(self, ds: Dataset) -> bool:
        checks = (
            (self.manufacturer, lambda v: v.casefold() in str(ds.get("Manufacturer", "")).casefold()),
            (self.model, lambda v: v.casefold() in str(ds.get("ManufacturerModelName", "")).casefold()),
            (self.modality, lambda v: v == str(ds.get("Modality", "")).strip()),
            (self.rows, lambda v: v == ds.get("Rows")),
            (self.columns, lambda v: v == ds.get("Columns")),
        )
        return all(check(value) for value, check in checks if value not in ("", None))

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any]) -> RegionTemplate:
        name = str(entry.get("name", "")).strip()
        match = entry.get("match")
        rects = entry.get("regions")
        if not name or not isinstance(match, Mapping) or not rects:
            raise TemplateError(f"pixel template {entry!r} needs a name, a match table and regions")
        if not (match.get("manufacturer") or match.get("model")):
            raise TemplateError(f"pixel template {name!r} must match on manufacturer or model")
        unknown = set(match) - {"manufacturer", "model", "modality", "rows", "columns"}
        if unknown:
            raise TemplateError(f"pixel template {name!r}: unknown match keys {sorted(unknown)}")
        try:
            regions = tuple(Region(*map(int, rect), source="template", text=name) for rect in rects)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"pixel template {name!r}: regions must be [x, y, width, height]: {exc}") from exc
        return cls(
            name=name,
            regions=regions,
            source=str(entry.get("source", "")),
            manufacturer=str(match.get("manufacturer", "")),
            model=str(match.get("model", "")),
            modality=str(match.get("modality", "")),
            rows=int(match["rows"]) if "rows" in match else None,
            columns=int(match["columns"]) if "columns" in match else None,
        )


@dataclass(frozen=True)
class _Word:
    text: str
    confidence: float
    box: Region
    view: str


# --- Data ------------------------------------------------------------------------------------


def _read_data(path: Path | None) -> dict[str, Any]:
    if path is None:
        text = files(__package__).joinpath("data", TEMPLATES_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _default_data() -> dict[str, Any]:
    return _read_data(None)


def load_templates(path: Path | None = None) -> tuple[RegionTemplate, ...]:
    """The region templates of ``path``, or of the packaged ``pixel_regions.json``."""
    data = _default_data() if path is None else _read_data(path)
    return tuple(RegionTemplate.from_mapping(entry) for entry in data.get("templates", ()))


def non_identifying_patterns(path: Path | None = None) -> tuple[re.Pattern[str], ...]:
    """Whole-word patterns of text that identifies nobody (orientation labels, measurements)."""
    data = _default_data() if path is None else _read_data(path)
    return tuple(re.compile(p, re.IGNORECASE) for p in data.get("non_identifying_text", ()))


# --- Policy ----------------------------------------------------------------------------------


def needs_pixel_cleaning(ds: Dataset) -> bool:
    """True for images marked Burned In Annotation YES and for every US, SC, OT, XA, RF or DX image."""
    if "PixelData" not in ds:
        return False
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        return True
    return str(ds.get("Modality", "")).strip().upper() in ALWAYS_CLEANED_MODALITIES


def matching_templates(ds: Dataset, templates: Iterable[RegionTemplate] | None = None) -> list[RegionTemplate]:
    return [t for t in (load_templates() if templates is None else templates) if t.matches(ds)]


# --- Decoding --------------------------------------------------------------------------------


def _describe(ds: Dataset) -> str:
    return f"image {ds.get('SOPInstanceUID', '(no SOP Instance UID)')}"


def _decode(ds: Dataset) -> tuple[np.ndarray, str, int]:
    """All frames as ``(frames, rows, columns[, samples])``, their photometric interpretation
    (YBR converted to RGB) and Bits Stored."""
    if "PixelData" not in ds:
        raise PixelCleaningFailed(f"{_describe(ds)} has no Pixel Data")
    meta = getattr(ds, "file_meta", None)
    tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if tsyntax is None:
        raise PixelCleaningFailed(f"{_describe(ds)}: no Transfer Syntax UID, the pixel data cannot be decoded")
    try:
        arr, info = get_decoder(tsyntax).as_array(ds, as_rgb=True)
        photometric = str(info.get("photometric_interpretation", ds.PhotometricInterpretation))
        if photometric.startswith("YBR"):  # as_rgb converts what pydicom can; the rest fails here
            arr, photometric = convert_color_space(arr, photometric, "RGB"), "RGB"
    except Exception as exc:  # every decoder failure is a reason to hold the image
        raise PixelCleaningFailed(f"{_describe(ds)}: frames cannot be decoded ({tsyntax.name}): {exc}") from exc
    samples = int(info.get("samples_per_pixel", ds.get("SamplesPerPixel", 1)))
    if "NumberOfFrames" not in ds or int(ds.NumberOfFrames or 1) == 1:
        if arr.ndim == (3 if samples > 1 else 2):
            arr = arr[np.newaxis]
    bits_stored = int(info.get("bits_stored", ds.get("BitsStored", arr.dtype.itemsize * 8)))
    return arr, photometric, bits_stored


def _to_8bit(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    return np.round((values - low) * (255.0 / max(high - low, 1.0))).astype(np.uint8)


def _display_gray(ds: Dataset, frames: np.ndarray, photometric: str) -> np.ndarray:
    """One 8-bit brightness image per frame, text bright: colour text counts by its brightest
    channel, so red, green or blue annotation is as visible as white."""
    if photometric == "PALETTE COLOR":
        frames = apply_color_lut(frames, ds)
    if frames.ndim == 4:
        brightest = frames.max(axis=-1)
        # 8-bit colour keeps its absolute levels: the bright-text pass looks for near-white
        return brightest if brightest.dtype == np.uint8 else _to_8bit(brightest)
    gray = _to_8bit(frames)
    return 255 - gray if photometric == "MONOCHROME1" else gray


def display_frame(ds: Dataset, frame: int = 0) -> np.ndarray:
    """One frame as it would be looked at, 8-bit: ``(rows, columns)`` grey or ``(rows, columns, 3)``
    RGB, stretched over its range. For previews; raises PixelCleaningFailed like cleaning does."""
    frames, photometric, _ = _decode(ds)
    one = frames[min(frame, frames.shape[0] - 1)]
    if photometric == "PALETTE COLOR":
        one = apply_color_lut(one, ds)
    if one.ndim == 3:
        return one if one.dtype == np.uint8 else _to_8bit(one)
    gray = _to_8bit(one)
    return 255 - gray if photometric == "MONOCHROME1" else gray


def _ocr_views(gray: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The images to read. Few distinct frames: each of them. A cine: its minimum projection
    (static annotation, free of moving anatomy) and its maximum projection (anything drawn in
    any frame, brighter than what lies behind it)."""
    distinct: dict[bytes, tuple[int, np.ndarray]] = {}
    for index, frame in enumerate(gray):
        distinct.setdefault(hashlib.blake2b(frame.tobytes(), digest_size=16).digest(), (index, frame))
    if len(distinct) <= PER_FRAME_LIMIT:
        return [(f"frame {index + 1}", frame) for index, frame in distinct.values()]
    return [
        (f"minimum projection of {len(gray)} frames", gray.min(axis=0)),
        (f"maximum projection of {len(gray)} frames", gray.max(axis=0)),
    ]


# --- OCR -------------------------------------------------------------------------------------


def _upscale(rows: int, columns: int) -> int:
    return max(1, min(3, round(OCR_TARGET_SIZE / max(rows, columns))))


def _ocr_image(view: np.ndarray, bright_only: bool) -> tuple[Image.Image, int]:
    scale = _upscale(*view.shape)
    image = Image.fromarray(view)
    if scale > 1:
        image = image.resize((view.shape[1] * scale, view.shape[0] * scale), Image.Resampling.BICUBIC)
    pixels = np.asarray(image)
    # tesseract reads dark text on a light page
    pixels = np.where(pixels >= BRIGHT_THRESHOLD, 0, 255).astype(np.uint8) if bright_only else 255 - pixels
    return Image.fromarray(pixels), scale


def _read_words(view: np.ndarray, label: str, bright_only: bool) -> list[_Word]:
    import pytesseract  # imported here so that a missing wrapper fails closed, not at import

    image, scale = _ocr_image(view, bright_only)
    data = pytesseract.image_to_data(
        image, lang="eng", config=OCR_CONFIG, output_type=pytesseract.Output.DICT, timeout=OCR_TIMEOUT_S
    )
    words = []
    rows, columns = view.shape
    for text, conf, left, top, width, height in zip(
        data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
    ):
        text = str(text).strip()
        if not text or float(conf) < 0:
            continue
        x0, y0 = int(left) // scale, int(top) // scale
        x1 = min(columns, math.ceil((int(left) + int(width)) / scale))
        y1 = min(rows, math.ceil((int(top) + int(height)) / scale))
        if x1 <= x0 or y1 <= y0:
            continue
        words.append(_Word(text, float(conf), Region(x0, y0, x1 - x0, y1 - y0, "ocr", text), label))
    return words


def _run_ocr(ds: Dataset, views: list[tuple[str, np.ndarray]]) -> list[_Word]:
    # One thread per tesseract process: on few cores, parallel single-threaded runs are faster
    # than tesseract's own OpenMP threads. An operator's explicit setting is respected.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        import pytesseract
    except ImportError as exc:
        raise PixelCleaningFailed(f"{_describe(ds)}: OCR cannot run, pytesseract is not installed") from exc
    jobs = [(view, label, bright) for label, view in views for bright in (True, False)]
    workers = max(1, min(len(jobs), os.cpu_count() or 1, 4))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda job: _read_words(*job), jobs))
    except pytesseract.TesseractNotFoundError as exc:
        raise PixelCleaningFailed(f"{_describe(ds)}: OCR cannot run, tesseract not found: {exc}") from exc
    except (pytesseract.TesseractError, RuntimeError, OSError, ValueError) as exc:
        raise PixelCleaningFailed(f"{_describe(ds)}: OCR failed: {exc}") from exc
    return [word for words in results for word in words]


def _is_text(word: _Word, rows: int) -> bool:
    """Not what OCR returns for lines, speckle and icons: no letter or digit, or too low to be
    legible; or, read badly, a box taller than a sixth of the image (anatomy, not a font) or
    far wider than its characters (a line or an edge)."""
    box = word.box
    if not any(ch.isalnum() for ch in word.text) or box.height < MIN_TEXT_HEIGHT:
        return False
    if word.confidence >= LOW_CONFIDENCE:
        return True
    return box.height <= rows * MAX_DOUBTFUL_HEIGHT and box.width <= box.height * (2 * len(word.text) + 2)


# --- Regions ---------------------------------------------------------------------------------


def _padded(box: Region, rows: int, columns: int) -> Region:
    """Grow a word box by a quarter of its height (at least 2 px): tesseract's boxes hug the
    glyphs and leave anti-aliased edges and accents outside."""
    pad = max(2, math.ceil(box.height / 4))
    x0, y0 = max(0, box.x - pad), max(0, box.y - pad)
    x1, y1 = min(columns, box.x1 + pad), min(rows, box.y1 + pad)
    return replace(box, x=x0, y=y0, width=x1 - x0, height=y1 - y0)


def _same_line(a: Region, b: Region) -> bool:
    """Overlapping boxes on one text line (sharing at least half the lower one's height), or
    one inside the other. Boxes of different lines are not merged: chained bounding
    rectangles would swallow the image between them."""
    if a.contains(b) or b.contains(a):
        return True
    shared = min(a.y1, b.y1) - max(a.y, b.y)
    return a.overlaps(b) and shared * 2 >= min(a.height, b.height)


def merge_regions(regions: Iterable[Region]) -> list[Region]:
    """Join overlapping regions of one source and one text line into their bounding rectangles."""
    merged = list(regions)
    changed = True
    while changed:
        changed = False
        result: list[Region] = []
        for region in merged:
            for i, other in enumerate(result):
                if region.source == other.source and _same_line(region, other):
                    x0, y0 = min(region.x, other.x), min(region.y, other.y)
                    x1, y1 = max(region.x1, other.x1), max(region.y1, other.y1)
                    first, second = sorted((other, region), key=lambda r: (r.x, r.y))
                    words = f"{first.text} {second.text}".split()
                    text = " ".join(dict.fromkeys(words))  # both OCR passes often read the same word
                    result[i] = Region(x0, y0, x1 - x0, y1 - y0, region.source, text)
                    changed = True
                    break
            else:
                result.append(region)
        merged = result
    return sorted(merged, key=lambda r: (r.y, r.x))


def _normalised(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def header_identifiers(ds: Dataset) -> dict[str, str]:
    """Identifying header values as OCR would show them (upper case, letters and digits only),
    each with the keyword it came from. Person names are split into their components: the ``^``
    between them is never drawn as such and OCR misreads or drops it. Dates are given in the
    day-first and month-first orders screens use as well as DICOM's."""
    found: dict[str, str] = {}
    for keyword in _HEADER_NAME_KEYWORDS + _HEADER_ID_KEYWORDS:
        value = ds.get(keyword)
        if value in (None, ""):
            continue
        for item in value if isinstance(value, (MultiValue, list, tuple)) else [value]:
            text = str(item)
            if keyword in _HEADER_NAME_KEYWORDS:
                parts = re.split(r"[\^=\s]+", text)
            elif keyword == "PatientBirthDate" and re.fullmatch(r"\d{8}", text):
                parts = [text, text[6:8] + text[4:6] + text[:4], text[4:6] + text[6:8] + text[:4]]
            else:
                parts = [text]
            shortest = MIN_NAME_PART if keyword in _HEADER_NAME_KEYWORDS else MIN_IDENTIFIER
            for part in parts:
                token = _normalised(part)
                if len(token) >= shortest:
                    found.setdefault(token, keyword)
    return found


def _identifiers_read(words: Iterable[_Word], identifiers: Mapping[str, str]) -> set[str]:
    return {keyword for w in words for token, keyword in identifiers.items() if token in _normalised(w.text)}


def _keepable(word: _Word, patterns: Sequence[re.Pattern[str]], identifiers: Mapping[str, str]) -> bool:
    if word.confidence < KEEP_CONFIDENCE or not any(p.fullmatch(word.text) for p in patterns):
        return False
    return not any(token in _normalised(word.text) for token in identifiers)


def find_text_regions(ds: Dataset, *, templates: Sequence[RegionTemplate] | None = None) -> PixelFindings:
    """Find burned-in text by OCR over every frame and by the matching region templates.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The image, any transfer syntax pydicom can decode (native, RLE, JPEG, JPEG-LS, JPEG 2000).
    templates : sequence of RegionTemplate, optional
        Templates to match instead of the packaged ``pixel_regions.json``.

    Returns
    -------
    PixelFindings
        Regions to blank (templates and padded OCR word boxes, merged along text lines),
        whether detection is uncertain, and why.

    Notes
    -----
    Each image read is OCRed twice: thresholded at :data:`BRIGHT_THRESHOLD` (white overlay text,
    clean even on speckle) and as is (grey or coloured text, tesseract binarises). Frames are
    upscaled first. A multi-frame image with up to :data:`PER_FRAME_LIMIT` distinct frames is
    read frame by frame; a longer one through its minimum and maximum projections. When regions
    were found the image is read again with them blanked, up to :data:`VERIFY_ROUNDS` times;
    clearly read text still appearing after that makes the findings uncertain, and so does an
    image marked Burned In Annotation YES in which nothing was found.

    Raises
    ------
    PixelCleaningFailed
        tesseract (or pytesseract) is missing or fails, or a frame cannot be decoded.
    """
    frames, photometric, _ = _decode(ds)
    rows, columns = frames.shape[1], frames.shape[2]
    views = _ocr_views(_display_gray(ds, frames, photometric))
    del frames

    matched = matching_templates(ds, templates)
    template_regions = tuple(r for t in matched for r in (c.clipped(rows, columns) for c in t.regions) if r is not None)
    modality = str(ds.get("Modality", "")).strip().upper()
    identifiers = header_identifiers(ds)
    patterns = non_identifying_patterns() if modality not in BLANK_ALL_TEXT_MODALITIES else ()

    words = [w for w in _run_ocr(ds, views) if _is_text(w, rows)]
    regions, kept = _regions(words, template_regions, patterns, identifiers, rows, columns)
    rounds, still_reading = 1, False
    # Verify: read the views again with the regions blanked. Text that tesseract missed beside
    # a word it did read (a split name, a line merged with speckle) shows up once its
    # neighbours are gone. Nothing blanked means nothing would change: no second reading.
    while regions and rounds <= VERIFY_ROUNDS:
        blanked = [(label, _blanked(view, regions)) for label, view in views]
        new = [w for w in _run_ocr(ds, blanked) if _is_text(w, rows) and not any(r.contains(w.box) for r in regions)]
        rounds += 1
        still_reading = any(w.confidence >= LOW_CONFIDENCE for w in new)
        if not new:
            break
        words += new
        regions, kept = _regions(words, template_regions, patterns, identifiers, rows, columns)
        if not still_reading:
            break

    notes = [f"OCR read {len(words)} word(s) in {', '.join(label for label, _ in views)} ({rounds} reading(s))"]
    if matched:
        notes.append("templates: " + "; ".join(t.name for t in matched))
    read = _identifiers_read(words, identifiers)
    if read:
        notes.append("header identifiers read in the pixels: " + ", ".join(sorted(read)))
    unsure = [w.text for w in words if w.confidence < LOW_CONFIDENCE]
    if unsure:
        notes.append(f"{len(unsure)} word(s) read below confidence {LOW_CONFIDENCE} blanked all the same")
    if kept:
        notes.append(f"{len(kept)} non-identifying word(s) offered for keeping: " + ", ".join(k.text for k in kept))
    uncertain = False
    if still_reading:
        uncertain = True
        notes.append(f"uncertain: OCR still read new text after {rounds} readings")
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES" and not regions:
        uncertain = True
        notes.append("uncertain: Burned In Annotation is YES but no text was found")
    return PixelFindings(bool(regions), regions, uncertain, "; ".join(notes), kept)


def _regions(
    words: Sequence[_Word],
    template_regions: tuple[Region, ...],
    patterns: Sequence[re.Pattern[str]],
    identifiers: Mapping[str, str],
    rows: int,
    columns: int,
) -> tuple[tuple[Region, ...], tuple[Region, ...]]:
    """Regions to blank (templates, then padded and merged OCR boxes not already inside a
    template) and regions offered for keeping."""
    kept_words = [w for w in words if patterns and _keepable(w, patterns, identifiers)]
    blank_words = [w for w in words if w not in kept_words]
    ocr_regions = tuple(
        r for r in merge_regions(_padded(w.box, rows, columns) for w in blank_words)
        if not any(t.contains(r) for t in template_regions)
    )
    regions = template_regions + ocr_regions
    kept = tuple(
        k for k in merge_regions(_padded(w.box, rows, columns) for w in kept_words)
        if not any(k.overlaps(r) for r in regions)
    )
    return regions, kept


def _blanked(view: np.ndarray, regions: Iterable[Region]) -> np.ndarray:
    view = view.copy()
    for region in regions:
        view[region.y : region.y1, region.x : region.x1] = 0
    return view


# --- Cleaning --------------------------------------------------------------------------------


def _black(ds: Dataset, frames: np.ndarray, photometric: str) -> int:
    """The value that shows black: the darkest value in use for grey images (a value outside
    their range would stretch every automatic window), 0 for RGB, the darkest palette entry."""
    if photometric == "MONOCHROME2":
        return int(frames.min())
    if photometric == "MONOCHROME1":
        return int(frames.max())
    if photometric == "PALETTE COLOR":
        entries, first, _ = ds.RedPaletteColorLookupTableDescriptor
        entries = entries or 65536
        indices = np.arange(first, first + entries, dtype=np.int64)
        indices = indices[(indices >= np.iinfo(frames.dtype).min) & (indices <= np.iinfo(frames.dtype).max)]
        colours = apply_color_lut(indices.astype(frames.dtype), ds).astype(np.int64)
        return int(indices[np.argmin(colours.sum(axis=-1))])
    if photometric == "RGB":
        return 0
    raise PixelCleaningFailed(f"{_describe(ds)}: cannot blank {photometric} pixel data")


def clean_pixels(ds: Dataset, regions: Sequence[Region]) -> Dataset:
    """A copy of ``ds`` with ``regions`` blanked in every frame and Burned In Annotation NO.

    With no regions the Pixel Data is left byte for byte as it was. Otherwise the frames are
    decoded, blanked (black in every sample) and stored uncompressed: compressed input becomes
    Explicit VR Little Endian, YBR becomes RGB with Planar Configuration 0, and the
    encapsulation (and any extended offset table) is removed. Lossy Image Compression stays as
    it was: the pixels have been through lossy compression before. The input is not changed.

    Call it with the regions of findings that are not uncertain, or that a person confirmed.

    Raises
    ------
    PixelCleaningFailed
        The frames cannot be decoded or the pixel format cannot be written back.
    """
    out = copy.deepcopy(ds)
    if regions:
        if not ds.file_meta.TransferSyntaxUID.is_little_endian:
            # retired Explicit VR Big Endian: other OB/OW values (LUTs, overlays) would have to be
            # byte-swapped too when the object is rewritten little endian
            raise PixelCleaningFailed(f"{_describe(ds)}: big endian pixel data is not cleaned here")
        frames, photometric, bits_stored = _decode(ds)
        frames = np.array(frames, copy=True)
        rows, columns = frames.shape[1], frames.shape[2]
        value = _black(ds, frames, photometric)
        for region in regions:
            clipped = region.clipped(rows, columns)
            if clipped is not None:
                frames[:, clipped.y : clipped.y1, clipped.x : clipped.x1, ...] = value
        if "NumberOfFrames" not in ds:
            frames = frames[0]
        for tag in (0x7FE00001, 0x7FE00002):  # Extended Offset Table (Lengths)
            if tag in out:
                del out[tag]
        try:
            out.set_pixel_data(frames, photometric, bits_stored, generate_instance_uid=False)
        except (ValueError, AttributeError, NotImplementedError) as exc:
            raise PixelCleaningFailed(f"{_describe(ds)}: cleaned pixels cannot be stored: {exc}") from exc
    out.BurnedInAnnotation = "NO"
    return out


__all__ = [
    "ALWAYS_CLEANED_MODALITIES",
    "BLANK_ALL_TEXT_MODALITIES",
    "PixelCleaningFailed",
    "PixelFindings",
    "Region",
    "RegionTemplate",
    "TemplateError",
    "clean_pixels",
    "display_frame",
    "find_text_regions",
    "header_identifiers",
    "load_templates",
    "matching_templates",
    "merge_regions",
    "needs_pixel_cleaning",
    "non_identifying_patterns",
]


@dataclass(frozen=True)
class PixelCleaning:
    """What :func:`clean_pixel_data` did to one object.

    Attributes
    ----------
    dataset : pydicom.dataset.Dataset
        The object as it may leave: a cleaned copy, or the input itself when nothing changed.
    scanned : bool
        Pixel cleaning ran on it (write 113101, Clean Pixel Data, when de-identifying).
    reason : str
        Why it was not scanned, or what the scan found (the findings' reason).
    findings : PixelFindings or None
        ``None`` when not scanned.
    changed_fraction : float
        Fraction of the image's pixels changed (0.0 when nothing was blanked).
    """

    dataset: Dataset
    scanned: bool
    reason: str
    findings: PixelFindings | None = None
    changed_fraction: float = 0.0


def changed_fraction(regions: Sequence[Region], rows: int, columns: int) -> float:
    """The fraction of an image of ``rows`` x ``columns`` that ``regions`` cover (overlaps once)."""
    if rows <= 0 or columns <= 0:
        return 0.0
    mask = np.zeros((rows, columns), dtype=bool)
    for region in regions:
        clipped = region.clipped(rows, columns)
        if clipped is not None:
            mask[clipped.y : clipped.y1, clipped.x : clipped.x1] = True
    return float(mask.mean())


def clean_pixel_data(ds: Dataset) -> PixelCleaning:
    """Blank burned-in text where the modality or the header says it may be; untouched otherwise.

    Uncertain detection raises PixelCleaningFailed: such an image waits for a person.
    """
    if not needs_pixel_cleaning(ds):
        return PixelCleaning(ds, False, "not scanned: no pixel data, or declared free of burned-in text")
    findings = find_text_regions(ds)
    if findings.uncertain:
        raise PixelCleaningFailed(f"image {ds.get('SOPInstanceUID', '?')}: {findings.reason}")
    cleaned = clean_pixels(ds, findings.regions) if findings.regions else ds
    fraction = changed_fraction(findings.regions, int(ds.Rows), int(ds.Columns))
    return PixelCleaning(cleaned, True, findings.reason, findings, fraction)
