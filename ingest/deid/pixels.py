"""Clean Pixel Data (PS3.15 E.3.1): find burned-in text that identifies, blank it in every frame,
and keep the anatomy.

>>> findings = find_text_regions(dataset)  # doctest: +SKIP
>>> if findings.uncertain: hold_for_a_person(dataset, findings)  # doctest: +SKIP
>>> cleaned = clean_pixels(dataset, findings.regions)  # doctest: +SKIP

What DICOM already says is used before any OCR:

* Burned In Annotation NO is trusted for original CR, DX, CT and MR (unless a site template
  matches); derived secondary captures and screen saves are scanned whatever they say.
* Ultrasound: the scan area (Sequence of Ultrasound Regions, a device template, or the part of
  a cine that moves; :mod:`ingest.deid.scan_area`) is the image; everything outside it is masked
  and nothing inside it is touched unless it identifies someone.
* Device templates (``data/pixel_regions.json``) blank the places where a device burns in text.

Text is then found by its shape (:mod:`ingest.deid.text_lines`: rows of uniform, high-contrast
glyphs) and read with tesseract, line by line. A line is blanked when it identifies (it matches
the object's own names, IDs, dates or institution, or an ID-like pattern:
:mod:`ingest.deid.pixel_identifiers`) or when it is annotation on a flat band (a banner, black
margins) unless every word is an orientation label or a measurement. Text read over anatomy that
identifies nobody (anatomy labels, laterality markers, measurements) is kept and offered in the
preview. Speckle, bone and Doppler signal are never blanked: they are not read as lines of text.

Cleaning fails closed: when OCR cannot run or errors, or a frame cannot be decoded,
:class:`PixelCleaningFailed` is raised, and when detection is doubtful the findings say
``uncertain`` with the reason; in both cases the caller holds the image for a person.

Pixel data that needs no blanking is never decoded or re-encoded, so it stays byte-identical.
Blanked images are stored uncompressed (Explicit VR Little Endian when the input was compressed
or big endian): nothing here can re-encode JPEG without a second lossy generation.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, convert_color_space, get_decoder
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from . import scan_area as scan_areas
from .pixel_identifiers import header_identifiers, identifying, keepable
from .scan_area import ScanArea
from .text_lines import Box, TextLine, find_lines, read_lines

TEMPLATES_FILE = "pixel_regions.json"

ALWAYS_SCANNED_MODALITIES = frozenset({"US", "SC", "OT", "XA", "RF", "DX", "CR", "MG", "ES", "XC", "GM", "IO", "PX"})
"""Modalities whose images are scanned for burned-in text unless declared free of it (below)."""
DECLARED_FREE_TRUSTED = frozenset({"CR", "DX", "CT", "MR"})
"""Modalities whose original images marked Burned In Annotation NO are believed and left alone."""

REGION_SOURCES = frozenset({"ocr", "template", "region", "user"})
AUTOMATIC_SOURCES = frozenset({"template", "region"})
"""Rectangles that come from what is known of the device or the object, not from reading text."""

READ_CONFIDENCE = 60
"""A line counts as read when a word in it was read at least this surely (0-100)."""
KEEP_CONFIDENCE = 80
"""A word may be kept (not blanked) only when read at least this surely."""
IDENTIFIER_CONFIDENCE = 20
"""Words read this surely are compared with the header's identifiers: a name read badly is
still a name."""
MARGIN = 0.12
"""Without a known scan area, the outer 12% of the rows and columns are where devices put their
annotation bands (title bars, settings columns, footers); text on a plain ground there is blanked."""
UNREAD_LINE_GLYPHS = 4
"""A row of this many uniform glyphs on a plain band is blanked even when nothing in it was read;
shorter unread rows there are icons and markers."""
VERIFY_ROUNDS = 2
"""How many times the image is looked at again with its regions blanked. An identifier still
found after the last look makes the findings uncertain."""
PER_FRAME_LIMIT = 4
"""Multi-frame images with at most this many distinct frames are read frame by frame (pages of
a secondary capture can each carry different text at the same place); longer cines are read
through their minimum and maximum projections."""



class PixelCleaningFailed(Exception):
    """Pixel cleaning could not be done safely; the caller holds the image for a person.

    The message names the image (SOP Instance UID) and the reason.
    """


class TemplateError(ValueError):
    """The template file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Region(Box):
    """A rectangle of pixels to blank, the same in every frame.

    Attributes
    ----------
    x, y : int
        Top-left corner, in pixels from the image's top-left corner.
    width, height : int
        Size in pixels, both positive.
    source : str
        ``"ocr"`` (a text line read), ``"template"`` (a device template), ``"region"`` (outside
        the ultrasound scan area) or ``"user"`` (added in the preview).
    text : str
        What OCR read inside (words joined by spaces), or the template name.
    why : str
        Why it is blanked (or kept), in plain words: "matches PatientName in the header".
    """

    x: int
    y: int
    width: int
    height: int
    source: str
    text: str = ""
    why: str = ""

    def __post_init__(self) -> None:
        if self.source not in REGION_SOURCES:
            raise ValueError(f"region source {self.source!r} is not one of {sorted(REGION_SOURCES)}")
        if self.x < 0 or self.y < 0 or self.width <= 0 or self.height <= 0:
            raise ValueError(f"region ({self.x}, {self.y}, {self.width}, {self.height}) needs x, y >= 0 and a positive size")

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
        Text read that identifies nobody (anatomy labels, laterality markers, measurements),
        kept in the image and offered in the preview; blanked only if a person adds it.
    scan_area : ScanArea or None
        Where the image itself is, when known (ultrasound); everything outside is masked.
    """

    needs_cleaning: bool
    regions: tuple[Region, ...]
    uncertain: bool
    reason: str
    kept: tuple[Region, ...] = ()
    scan_area: ScanArea | None = None

    @property
    def automatic_only(self) -> bool:
        """Every rectangle comes from a template or the scan area, none from reading text."""
        return all(r.source in AUTOMATIC_SOURCES for r in self.regions)


@dataclass(frozen=True)
class RegionTemplate:
    """Rectangles where one kind of device burns text in, from ``pixel_regions.json``.

    Every condition that is set must hold: ``manufacturer`` and ``model`` are case-insensitive
    substrings of Manufacturer and Manufacturer's Model Name, ``modality`` is exact, ``rows``
    and ``columns`` are the exact image size. ``scan_area`` (ultrasound) is where the image is:
    everything outside it is masked.
    """

    name: str
    regions: tuple[Region, ...]
    source: str
    scan_area: tuple[tuple[int, int, int, int], ...] = ()
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
        rects = entry.get("regions", [])
        area = entry.get("scan_area", [])
        if not name or not isinstance(match, Mapping) or not (rects or area):
            raise TemplateError(f"pixel template {entry!r} needs a name, a match table and regions or a scan area")
        if not (match.get("manufacturer") or match.get("model")):
            raise TemplateError(f"pixel template {name!r} must match on manufacturer or model")
        unknown = set(match) - {"manufacturer", "model", "modality", "rows", "columns"}
        if unknown:
            raise TemplateError(f"pixel template {name!r}: unknown match keys {sorted(unknown)}")
        try:
            regions = tuple(Region(*map(int, rect), source="template", text=name, why=f"device template {name}") for rect in rects)
            scan_area = tuple(Region(*map(int, rect), source="template") for rect in area)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"pixel template {name!r}: regions must be [x, y, width, height]: {exc}") from exc
        return cls(
            name=name,
            regions=regions,
            source=str(entry.get("source", "")),
            scan_area=tuple((r.x, r.y, r.width, r.height) for r in scan_area),
            manufacturer=str(match.get("manufacturer", "")),
            model=str(match.get("model", "")),
            modality=str(match.get("modality", "")),
            rows=int(match["rows"]) if "rows" in match else None,
            columns=int(match["columns"]) if "columns" in match else None,
        )


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


def scan_decision(ds: Dataset, templates: Iterable[RegionTemplate] | None = None) -> tuple[bool, str]:
    """Whether the image is scanned for burned-in text, and why (shown in reports)."""
    if "PixelData" not in ds:
        return False, "no pixel data"
    modality = str(ds.get("Modality", "")).strip().upper()
    declared = str(ds.get("BurnedInAnnotation", "")).strip().upper()
    image_type = [str(v).strip().upper() for v in ds.get("ImageType", []) or []]
    if declared == "YES":
        return True, "Burned In Annotation is YES"
    if matching_templates(ds, templates):
        return True, "a device template matches"
    if image_type[:2] == ["DERIVED", "SECONDARY"] or str(ds.get("SOPClassUID", "")) == SecondaryCaptureImageStorage:
        return True, "a secondary capture or screen save"
    if declared == "NO" and modality in DECLARED_FREE_TRUSTED and image_type[:1] == ["ORIGINAL"]:
        return False, f"original {modality} image declared free of burned-in text"
    if modality in ALWAYS_SCANNED_MODALITIES:
        return True, f"{modality} images may carry burned-in text"
    return False, f"{modality or 'unknown modality'} image not marked as carrying burned-in text"


def needs_pixel_cleaning(ds: Dataset) -> bool:
    """True when :func:`scan_decision` says the image is scanned."""
    return scan_decision(ds)[0]


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


# --- Regions ---------------------------------------------------------------------------------


def _padded(box: Region, rows: int, columns: int) -> Region:
    """Grow a line's box by a quarter of its height (at least 2 px): glyph boxes leave
    anti-aliased edges, accents and descenders outside."""
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
                    why = "; ".join(dict.fromkeys(w for w in (first.why, second.why) if w))
                    result[i] = Region(x0, y0, x1 - x0, y1 - y0, region.source, text, why)
                    changed = True
                    break
            else:
                result.append(region)
        merged = result
    return sorted(merged, key=lambda r: (r.y, r.x))


# --- Detection -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decision:
    line: TextLine
    action: str  # "blank" | "keep" | "ignore"
    why: str


def _decide(
    line: TextLine, identifiers: Mapping[str, str], patterns: Sequence[re.Pattern[str]], blank_all: bool, place: str,
) -> _Decision:
    """Blank what identifies, and annotation on a plain band in the margins or outside the scan
    area; keep labels and measurements read inside the image. ``place`` is ``"scan area"``
    (inside a known scan area), ``"margin"`` (the outer band of an image whose scan area is not
    known) or ``"image"``."""
    loose = [w.text for w in line.read_with(IDENTIFIER_CONFIDENCE)]
    why = identifying(loose, identifiers)
    if why:
        return _Decision(line, "blank", why)
    read = line.read_with(READ_CONFIDENCE)
    readable = len(_alnum(w.text for w in read)) >= 2
    sure = [w.text for w in line.read_with(KEEP_CONFIDENCE)]
    plain = line.flat and (len(_alnum(loose)) >= 2 or (line.uniform and line.glyphs >= UNREAD_LINE_GLYPHS))
    if blank_all and (readable or plain):
        return _Decision(line, "blank", "all burned-in text is blanked (profile)")
    if plain and place == "margin":
        if sure and len(sure) == len(read) and keepable(sure, patterns):
            return _Decision(line, "keep", "a label or measurement that identifies nobody")
        return _Decision(line, "blank", "annotation on a plain band")
    if readable:
        where = "inside the scan area" if place == "scan area" else "over the image"
        return _Decision(line, "keep", f"text read {where} that identifies nobody")
    return _Decision(line, "ignore", "")


def _place(line: TextLine, area: ScanArea | None, rows: int, columns: int) -> str:
    if area is not None:
        return "scan area" if area.contains(line.x, line.y, line.width, line.height) else "margin"
    cx, cy = line.x + line.width / 2, line.y + line.height / 2
    inner = MARGIN * rows <= cy <= (1 - MARGIN) * rows and MARGIN * columns <= cx <= (1 - MARGIN) * columns
    return "image" if inner else "margin"


def _alnum(words: Iterable[str]) -> list[str]:
    """The letters and digits of ``words``."""
    return [ch for word in words for ch in word if ch.isalnum()]


def _line_region(line: TextLine, source: str, why: str, rows: int, columns: int) -> Region:
    return _padded(Region(line.x, line.y, line.width, line.height, source, line.text, why), rows, columns)


def _coverage(regions: Iterable[Region], rows: int, columns: int) -> np.ndarray:
    mask = np.zeros((rows, columns), dtype=bool)
    for r in regions:
        mask[r.y : r.y1, r.x : r.x1] = True
    return mask


def _covered(line: TextLine, blanked: np.ndarray) -> bool:
    """The line lies wholly inside what is blanked already."""
    return bool(blanked[line.y : line.y1, line.x : line.x1].all())


def _scan_area(ds: Dataset, gray: np.ndarray, matched: Sequence[RegionTemplate], notes: list[str]) -> ScanArea | None:
    """The ultrasound scan area, when the object says where it is or the cine shows it."""
    if str(ds.get("Modality", "")).strip().upper() != "US":
        return None
    rows, columns = gray.shape[1:]
    area, why = scan_areas.from_ultrasound_regions(ds, rows, columns)
    if why:
        notes.append(why)
    if area is None:
        for template in matched:
            if template.scan_area:
                area = ScanArea(template.scan_area, f"template {template.name}")
                break
    if area is None:
        area = scan_areas.from_motion(gray)
    return area


def find_text_regions(
    ds: Dataset, *, templates: Sequence[RegionTemplate] | None = None, blank_all_text: bool = False
) -> PixelFindings:
    """Find the burned-in text to blank, and the text to keep, in every frame.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The image, any transfer syntax pydicom can decode (native, RLE, JPEG, JPEG-LS, JPEG 2000).
    templates : sequence of RegionTemplate, optional
        Templates to match instead of the packaged ``pixel_regions.json``.
    blank_all_text : bool
        Blank every line of text read, labels and measurements included.

    Returns
    -------
    PixelFindings
        Regions to blank (templates, the outside of the scan area, text lines), text kept,
        whether detection is uncertain, and why.

    Notes
    -----
    A multi-frame image with up to :data:`PER_FRAME_LIMIT` distinct frames is read frame by
    frame; a longer one through its minimum and maximum projections. When lines were blanked
    the views are looked at again with them blanked, up to :data:`VERIFY_ROUNDS` times (text
    next to a blanked line can show up once its neighbour is gone); an identifier still found
    after that makes the findings uncertain, and so does an image marked Burned In Annotation
    YES in which nothing was found.

    Raises
    ------
    PixelCleaningFailed
        tesseract (or pytesseract) is missing or fails, or a frame cannot be decoded.
    """
    frames, photometric, _ = _decode(ds)
    rows, columns = frames.shape[1], frames.shape[2]
    gray = _display_gray(ds, frames, photometric)
    del frames
    views = _views(gray)
    notes: list[str] = []
    matched = matching_templates(ds, templates)
    area = _scan_area(ds, gray, matched, notes)
    del gray

    regions: list[Region] = [r for t in matched for r in (c.clipped(rows, columns) for c in t.regions) if r is not None]
    if area is not None:
        why = f"outside the scan area ({area.source})"
        regions += [Region(x, y, w, h, "region", "", why) for x, y, w, h in scan_areas.outside(area, rows, columns)]
    identifiers = header_identifiers(ds)
    patterns = non_identifying_patterns()

    decisions: list[_Decision] = []
    rounds, late_identifiers = 0, []
    seen: dict[str, list[TextLine]] = {label: [] for label, _ in views}
    while rounds <= VERIFY_ROUNDS:
        covered = _coverage(regions, rows, columns)
        new: list[TextLine] = []
        for label, view in views:
            blanked = _blanked(view, regions) if rounds else view
            candidates = [
                line for line in find_lines(blanked)
                if not _covered(line, covered) and not any(line.overlaps(old) > 0.8 for old in seen[label])
            ]
            seen[label] += candidates
            new += _read(ds, blanked, candidates)
        fresh = [_decide(line, identifiers, patterns, blank_all_text, _place(line, area, rows, columns)) for line in new]
        decisions += fresh
        blanks = [d for d in fresh if d.action == "blank"]
        if rounds and blanks:
            late_identifiers = [d for d in blanks if not d.why.startswith("annotation")]
        regions += [_line_region(d.line, "ocr", d.why, rows, columns) for d in blanks]
        rounds += 1
        if not blanks:
            late_identifiers = []
            break

    ocr = merge_regions(r for r in regions if r.source == "ocr")
    regions = [r for r in regions if r.source != "ocr"] + [r for r in ocr if not any(t.contains(r) for t in regions if t.source != "ocr")]
    kept = tuple(
        merge_regions(_line_region(d.line, "ocr", d.why, rows, columns) for d in decisions if d.action == "keep")
    )
    kept = tuple(k for k in kept if not any(k.overlaps(r) for r in regions))

    read = [d for d in decisions if d.action != "ignore"]
    notes.insert(0, f"{len(read)} line(s) of text read in {', '.join(label for label, _ in views)}")
    if area is not None:
        notes.append(f"scan area from {area.source}: everything outside it masked")
    if matched:
        notes.append("templates: " + "; ".join(t.name for t in matched))
    blanked_lines = [d for d in decisions if d.action == "blank"]
    if blanked_lines:
        notes.append(f"{len(blanked_lines)} line(s) blanked: " + "; ".join(f"{d.line.text or '(unread)'} ({d.why})" for d in blanked_lines[:12]))
    if kept:
        notes.append(f"{len(kept)} line(s) kept: " + ", ".join(k.text for k in kept))
    uncertain = False
    if late_identifiers:
        uncertain = True
        notes.append(f"uncertain: identifying text still found after {VERIFY_ROUNDS} more looks")
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES" and not regions:
        uncertain = True
        notes.append("uncertain: Burned In Annotation is YES but no text was found")
    ordered = tuple(sorted(regions, key=lambda r: (r.y, r.x)))
    return PixelFindings(bool(ordered), ordered, uncertain, "; ".join(notes), kept, area)


def _views(gray: np.ndarray) -> list[tuple[str, np.ndarray]]:
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


def _read(ds: Dataset, view: np.ndarray, lines: list[TextLine]) -> list[TextLine]:
    try:
        import pytesseract
    except ImportError as exc:
        raise PixelCleaningFailed(f"{_describe(ds)}: OCR cannot run, pytesseract is not installed") from exc
    try:
        return read_lines(view, lines)
    except pytesseract.TesseractNotFoundError as exc:
        raise PixelCleaningFailed(f"{_describe(ds)}: OCR cannot run, tesseract not found: {exc}") from exc
    except (pytesseract.TesseractError, RuntimeError, OSError, ValueError) as exc:
        raise PixelCleaningFailed(f"{_describe(ds)}: OCR failed: {exc}") from exc


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
        if not ds.file_meta.TransferSyntaxUID.is_little_endian:
            _to_little_endian(out)
        frames = frames.astype(frames.dtype.newbyteorder("<"), copy=False)  # decoded big endian stays so
        try:
            out.set_pixel_data(frames, photometric, bits_stored, generate_instance_uid=False)
        except (ValueError, AttributeError, NotImplementedError) as exc:
            raise PixelCleaningFailed(f"{_describe(ds)}: cleaned pixels cannot be stored: {exc}") from exc
    out.BurnedInAnnotation = "NO"
    return out


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


def clean_pixel_data(
    ds: Dataset, *, templates: Sequence[RegionTemplate] | None = None, blank_all_text: bool = False
) -> PixelCleaning:
    """Scan the image when :func:`scan_decision` says so and blank what it finds; certain only.

    Raises
    ------
    PixelCleaningFailed
        Detection is uncertain or could not run: such an image waits for a person.
    """
    scan, why = scan_decision(ds, templates)
    if not scan:
        return PixelCleaning(ds, False, f"not scanned: {why}")
    findings = find_text_regions(ds, templates=templates, blank_all_text=blank_all_text)
    if findings.uncertain:
        raise PixelCleaningFailed(f"image {ds.get('SOPInstanceUID', '?')}: {findings.reason}")
    cleaned = clean_pixels(ds, findings.regions) if findings.regions else ds
    fraction = changed_fraction(findings.regions, int(ds.Rows), int(ds.Columns))
    return PixelCleaning(cleaned, True, f"scanned: {why}; {findings.reason}", findings, fraction)


_SWAPPED_VRS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
"""Binary VRs whose values pydicom keeps as raw bytes in the file's byte order."""


def _to_little_endian(ds: Dataset) -> None:
    """Rewrite a (retired) big endian object's raw binary values little endian, in every
    sequence, so it can be stored Explicit VR Little Endian with its cleaned pixels; numbers
    of other VRs are decoded by pydicom and written in whatever order the file asks for."""
    for elem in ds.iterall():
        size = _SWAPPED_VRS.get(elem.VR)
        if size and isinstance(elem.value, bytes | bytearray) and elem.tag != 0x7FE00010:
            array = np.frombuffer(elem.value, dtype=f">u{size}" if size <= 8 else None)
            elem.value = array.astype(f"<u{size}").tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.set_original_encoding(False, True)


__all__ = [
    "ALWAYS_SCANNED_MODALITIES",
    "DECLARED_FREE_TRUSTED",
    "PixelCleaning",
    "PixelCleaningFailed",
    "PixelFindings",
    "Region",
    "RegionTemplate",
    "TemplateError",
    "changed_fraction",
    "clean_pixel_data",
    "clean_pixels",
    "display_frame",
    "find_text_regions",
    "header_identifiers",
    "load_templates",
    "matching_templates",
    "merge_regions",
    "needs_pixel_cleaning",
    "non_identifying_patterns",
    "scan_decision",
]
