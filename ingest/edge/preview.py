"""What the person confirming an export sees: each image as it will leave, blanked regions
filled and outlined, and the report's text with the patient's identifiers struck out."""

from __future__ import annotations

import difflib
import html
import io
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup
from PIL import Image, ImageDraw
from pydicom import dcmread
from pydicom.dataset import Dataset

from ..deid import Profile, ProjectKey, deidentify
from ..deid.pixels import Region, display_frame, needs_pixel_cleaning
from ..tce.manifest import is_manifest
from .selections import Selection

OUTLINE = {"ocr": (230, 30, 30), "template": (230, 120, 0), "user": (30, 90, 230)}
KEPT_OUTLINE = (30, 170, 60)
PREVIEW_MAX = 512
"""Preview images are scaled to at most this many pixels on their long side."""


@dataclass(frozen=True)
class PreviewImage:
    sop_uid: str
    modality: str
    rows: int
    columns: int
    frames: int
    cleaned: bool  # passes through pixel cleaning
    regions: list[Region]
    kept: list[Region]
    reason: str
    uncertain: bool


@dataclass(frozen=True)
class ReportText:
    label: str
    marked: Markup  # the original with removed identifiers in <del>
    changed: bool


def preview_images(selection: Selection, object_path) -> list[PreviewImage]:  # type: ignore[no-untyped-def]
    images = []
    for uid in selection.references:
        ds = dcmread(object_path(uid), stop_before_pixels=True)
        if "Rows" not in ds or "Columns" not in ds:  # not an image
            continue
        found = selection.findings.get(uid, {})
        images.append(PreviewImage(
            uid, str(ds.get("Modality", "")), int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames") or 1),
            uid in selection.regions or needs_pixel_cleaning(ds), selection.regions_of(uid),
            [Region(**r) for r in found.get("kept", [])], str(found.get("reason", "")), bool(found.get("uncertain")),
        ))
    return images


def render(path: Path, regions: list[Region], kept: list[Region]) -> bytes:
    """PNG of the first frame with ``regions`` blanked and outlined, ``kept`` outlined only."""
    ds = dcmread(path)
    pixels = display_frame(ds)
    image = Image.fromarray(pixels).convert("RGB")
    draw = ImageDraw.Draw(image)
    width = max(1, max(image.size) // 256)
    for region in regions:
        box = (region.x, region.y, region.x1 - 1, region.y1 - 1)
        draw.rectangle(box, fill=(0, 0, 0), outline=OUTLINE.get(region.source, OUTLINE["user"]), width=width)
    for region in kept:
        draw.rectangle((region.x, region.y, region.x1 - 1, region.y1 - 1), outline=KEPT_OUTLINE, width=width)
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
