"""What the person confirming an export sees: for every image that goes through pixel cleaning
the original (before, it never leaves the edge) beside the image as it will leave (after), the
rectangles outlined by where they came from, the share of the image blanked; and the report's
text with the patient's identifiers struck out."""

from __future__ import annotations

import difflib
import html
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from markupsafe import Markup
from PIL import Image, ImageDraw, ImageFont
from pydicom import dcmread
from pydicom.datadict import dictionary_description, keyword_dict
from pydicom.dataset import Dataset

from ..deid import Profile, ProjectKey, deidentify
from ..deid.pixels import (
    Region,
    changed_fraction,
    clean_pixels,
    display_frame,
    needs_pixel_cleaning,
)
from ..tce.manifest import is_manifest
from .selections import Selection, percent


@dataclass(frozen=True)
class Source:
    """Where a rectangle came from, as the legend says it; ``colour`` outlines it on the image
    (the same colour as ``.source-KEY`` in ui/static/edge.css)."""

    key: str
    label: str
    colour: tuple[int, int, int]


SOURCES = {s.key: s for s in (
    Source("template", "device template", (230, 120, 0)),
    Source("region", "outside the ultrasound scan area", (150, 60, 200)),
    Source("ocr", "text read in the image", (220, 30, 30)),
    Source("user", "added by you", (30, 90, 230)),
)}
KEPT = Source("kept", "text kept: identifies nobody", (30, 170, 60))
PREVIEW_MAX = 768
"""Preview images are scaled down to at most this many pixels on their long side."""

MODALITY_NAMES = {
    "US": "Ultrasound", "CT": "CT", "MR": "MRI", "CR": "Radiograph", "DX": "Radiograph", "MG": "Mammogram",
    "XA": "Angiogram", "RF": "Fluoroscopy", "NM": "Nuclear medicine", "PT": "PET", "SC": "Screen capture",
    "OT": "Screen capture", "ES": "Endoscopy", "XC": "Photograph", "GM": "Microscopy", "IO": "Dental radiograph",
    "PX": "Dental panoramic", "SR": "Report",
}


_WORD = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][A-Za-z]*)+\b")  # CamelCase: maybe an attribute keyword


def _readable(text: str) -> str:
    """Attribute keywords written as their names: "PatientName" -> "Patient's Name"."""
    def name(match: re.Match[str]) -> str:
        tag = keyword_dict.get(match.group(0))
        return dictionary_description(tag) if tag is not None else match.group(0)

    return _WORD.sub(name, text)


@dataclass(frozen=True)
class Rectangle:
    """One rectangle as the preview lists it: its number on the image, where it came from."""

    number: int
    region: Region
    source: Source

    @property
    def description(self) -> str:
        """The rectangle in words, each fact said once: 'Text read in the image “SMITH JOHN” —
        matches Patient's Name in the header', 'Outside the ultrasound scan area (cine motion)'."""
        label = self.source.label[:1].upper() + self.source.label[1:]
        text, why = self.region.text, _readable(str(getattr(self.region, "why", "") or ""))
        if self.source.key == "user" and text.startswith("added by "):
            return text[:1].upper() + text[1:]  # "Added by ajones"
        if self.source.key == "region" and why.lower().startswith("outside the scan area"):
            return f"{label} {why[len('outside the scan area'):].strip()}".strip()
        if text and why and text in why:
            why = ""  # a template's why repeats its name
        head = f"{label} “{text}”" if text and self.source.key == "ocr" else f"{label}: {text}" if text else label
        return f"{head} — {why}" if why else head


@dataclass(frozen=True)
class PreviewImage:
    sop_uid: str
    modality: str
    rows: int
    columns: int
    frames: int
    cleaned: bool  # passes through pixel cleaning (de-identified with Clean Pixel Data)
    rectangles: list[Rectangle]
    kept: list[Region]
    reason: str
    uncertain: bool
    changed_fraction: float

    @property
    def regions(self) -> list[Region]:
        return [r.region for r in self.rectangles]

    @property
    def kind(self) -> str:
        return MODALITY_NAMES.get(self.modality, "Image")

    @property
    def blanked(self) -> str:
        """'2.4% of the image blanked, in all 30 frames'; empty when nothing is blanked."""
        if not self.cleaned or not self.rectangles:
            return ""
        frames = f", in all {self.frames} frames" if self.frames > 1 else ""
        return f"{percent(self.changed_fraction)} of the image blanked{frames}"


@dataclass(frozen=True)
class ReportText:
    label: str
    marked: Markup  # the original with removed identifiers in <del>
    changed: bool


def preview_images(selection: Selection, object_path: Callable[[str], Path]) -> list[PreviewImage]:
    """The selection's images, those that go through cleaning first."""
    images = []
    for uid in selection.references:
        ds = dcmread(object_path(uid), stop_before_pixels=True)
        if "Rows" not in ds or "Columns" not in ds:  # not an image
            continue
        rows, columns, regions = int(ds.Rows), int(ds.Columns), selection.regions_of(uid)
        record = selection.cleaning.get(uid)
        cleaned = record.scanned if record else uid in selection.regions or needs_pixel_cleaning(ds)
        found = selection.findings.get(uid, {})
        images.append(PreviewImage(
            uid, str(ds.get("Modality", "")), rows, columns, int(ds.get("NumberOfFrames") or 1), cleaned,
            [Rectangle(n, r, SOURCES.get(r.source, SOURCES["user"])) for n, r in enumerate(regions, start=1)],
            selection.kept_of(uid), str(found.get("reason", "")), bool(found.get("uncertain")),
            (record.changed_fraction if record else changed_fraction(regions, rows, columns)) if cleaned else 0.0,
        ))
    return sorted(images, key=lambda image: not image.cleaned)


def render_before(path: Path, regions: list[Region], kept: list[Region]) -> bytes:
    """PNG of the original first frame (it never leaves the edge), each of ``regions`` outlined
    in its source's colour and numbered as the page lists it, ``kept`` outlined in green."""
    image = Image.fromarray(display_frame(dcmread(path))).convert("RGB")
    draw = ImageDraw.Draw(image)
    width = max(1, max(image.size) // 256)
    font = ImageFont.load_default(size=max(10, max(image.size) // 32))
    for region in kept:
        draw.rectangle((region.x, region.y, region.x1 - 1, region.y1 - 1), outline=KEPT.colour, width=width)
    for number, region in enumerate(regions, start=1):
        colour = SOURCES.get(region.source, SOURCES["user"]).colour
        draw.rectangle((region.x, region.y, region.x1 - 1, region.y1 - 1), outline=colour, width=width)
        box = draw.textbbox((region.x + width, region.y + width), str(number), font=font)
        draw.rectangle(box, fill=colour)
        draw.text((region.x + width, region.y + width), str(number), fill=(255, 255, 255), font=font)
    return _png(image)


def render_after(path: Path, regions: list[Region]) -> bytes:
    """PNG of the first frame as it will leave, shown with the same contrast as the original:
    the pixels that the release's own cleaning (:func:`clean_pixels`) changes are black.

    Raises
    ------
    PixelCleaningFailed
        The cleaned pixels cannot be made (the release would fail the same way).
    """
    ds = dcmread(path)
    shown = np.array(display_frame(ds), copy=True)
    if regions:
        shown[_changed(ds, clean_pixels(ds, regions), regions)] = 0
    return _png(Image.fromarray(shown).convert("RGB"))


def _changed(original: Dataset, cleaned: Dataset, regions: list[Region]) -> np.ndarray:
    """Where the first frame of ``cleaned`` differs from ``original``; the rectangles themselves
    when the two cannot be compared sample for sample."""
    before, after = _first_frame(original), _first_frame(cleaned)
    if before.shape == after.shape:
        differs = before != after
        return differs.any(axis=-1) if differs.ndim == 3 else differs
    mask = np.zeros(before.shape[:2], dtype=bool)
    for region in regions:
        mask[region.y:region.y1, region.x:region.x1] = True
    return mask


def _first_frame(ds: Dataset) -> np.ndarray:
    pixels = ds.pixel_array
    frames = int(ds.get("NumberOfFrames") or 1)
    return pixels[0] if frames > 1 else pixels


def _png(image: Image.Image) -> bytes:
    scale = min(1.0, PREVIEW_MAX / max(image.size))
    if scale < 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def report_texts(objects: list[Dataset], profile: Profile) -> list[ReportText]:
    """Every TEXT item of the selection's reports, with what de-identification removes from it."""
    texts: list[ReportText] = []
    for ds in objects:
        if str(ds.get("Modality", "")) != "SR" or is_manifest(ds):
            continue
        after = deidentify(ds, profile, ProjectKey.generate()).dataset
        before, sent = _texts(ds), _texts(after)
        if [label for label, _ in before] != [label for label, _ in sent]:  # items removed: show what leaves
            texts += [ReportText(label, Markup.escape(text), True) for label, text in sent]
            continue
        texts += [ReportText(label, _marked(old, new), old != new) for (label, old), (_, new) in zip(before, sent)]
    return texts


def _texts(ds: Dataset) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for item in ds.get("ContentSequence", []):
        if item.get("ValueType") == "TEXT":
            name = item.ConceptNameCodeSequence[0].CodeMeaning if item.get("ConceptNameCodeSequence") else ""
            found.append((str(name), str(item.get("TextValue", ""))))
        found += _texts(item)
    return found


def _marked(original: str, sent: str) -> Markup:
    parts = []
    for op, a0, a1, _b0, _b1 in difflib.SequenceMatcher(None, original, sent, autojunk=False).get_opcodes():
        text = html.escape(original[a0:a1])
        parts.append(text if op == "equal" else f"<del>{text}</del>" if text else "")
    return Markup("".join(parts))
