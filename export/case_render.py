"""A teaching case's pictures for export (PowerPoint, JPEG, movie): which images, and each frame
windowed and cropped the way the series is saved to open (archive.display), as an 8-bit PIL image.

The frame-to-grey step (modality LUT, the image's own VOI or min/max, MONOCHROME1, colour) is
api.rendering's, the same as the /rendered routes and thumbnails use; this module adds the saved
window, the saved crop and square pixels. :func:`plan_case` copies what an export needs out of the
database session (blob hashes, labels, text) and never the author, GMC number or DICOM identifiers,
so the exporters below it cannot put them in a file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, iter_pixels

from api.rendering import Window, to_image as frame_to_image
from archive.blobs import BlobStore
from archive.display import Crop, Display, image_series
from archive.errors import InvalidInput
from archive.models import Case, Instance
from ingest.tce.manifest import NotAManifest, is_manifest, parse_manifest

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
# structured reports and key object documents (88.*), presentation states (11.*), encapsulated
# documents (104.*), registrations and segmentations (66.*), waveforms (9.*): not pictures
NON_IMAGE_SOP_CLASS_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.", "1.2.840.10008.5.1.4.1.1.11.", "1.2.840.10008.5.1.4.1.1.104.",
    "1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.9.",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not allowed in XML text (pptx)


@dataclass(frozen=True)
class ImageRef:
    """One stored image of a series: ``number`` is its place in the series (from 1), as the viewer
    counts it, and ``series_label`` the series' number in file names."""

    sha256: str
    series_id: int
    series_label: int
    number: int
    of: int
    modality: str
    display: Display


@dataclass(frozen=True)
class SeriesRef:
    id: int
    label: int
    modality: str
    description: str
    display: Display
    images: tuple[ImageRef, ...]  # in Instance Number order


@dataclass(frozen=True)
class CasePlan:
    """What an export of one case may show: teaching text, the answers, and image references."""

    case_id: int
    title: str
    history: str
    findings: str
    discussion: str
    diagnosis: str
    differential: str
    codes: tuple[tuple[str, str, str], ...]  # (system, code, display)
    series: tuple[SeriesRef, ...]
    key_images: tuple[ImageRef, ...]
    key_images_from_manifest: bool

    def series_by_id(self, series_id: int) -> SeriesRef:
        for series in self.series:
            if series.id == series_id:
                return series
        raise InvalidInput(f"series {series_id} is not an image series of case {self.case_id}")


def clean_text(text: str | None) -> str:
    return _CONTROL.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n")).strip()


def is_picture(instance: Instance) -> bool:
    return not instance.sop_class_uid.startswith(NON_IMAGE_SOP_CLASS_PREFIXES)


def plan_case(case: Case, blobs: BlobStore) -> CasePlan:
    """The export plan of a case the caller may view (``archive.cases.get_case``)."""
    image_series_list = [s for study in case.studies for s in image_series(study.series)]
    numbers = [s.series_number for s in image_series_list]
    unique_numbers = None not in numbers and len(set(numbers)) == len(numbers)
    series_refs: list[SeriesRef] = []
    by_sop_uid: dict[str, ImageRef] = {}
    for position, series in enumerate(image_series_list, start=1):
        label = series.series_number if unique_numbers else position
        shown = Display.of(series)
        pictures = [i for i in series.instances if is_picture(i)]
        refs = tuple(
            ImageRef(i.blob_sha256, series.id, label, k, len(pictures), series.modality, shown)
            for k, i in enumerate(pictures, start=1)
        )
        by_sop_uid.update((i.sop_instance_uid, ref) for i, ref in zip(pictures, refs))
        if refs:
            series_refs.append(SeriesRef(series.id, label, series.modality, series.description, shown, refs))
    referenced = _manifest_references(case, blobs)
    keys = [by_sop_uid[uid] for uid in referenced if uid in by_sop_uid]
    order = {s.id: n for n, s in enumerate(series_refs)}
    keys.sort(key=lambda ref: (order[ref.series_id], ref.number))
    from_manifest = bool(keys)
    if not keys:  # no manifest, or it names no image that is here: the middle image of each series
        keys = [s.images[(len(s.images) - 1) // 2] for s in series_refs]
    return CasePlan(
        case_id=case.id, title=clean_text(case.title), history=clean_text(case.history),
        findings=clean_text(case.findings), discussion=clean_text(case.discussion),
        diagnosis=clean_text(case.diagnosis), differential=clean_text(case.differential),
        codes=tuple((clean_text(c.system), clean_text(c.code), clean_text(c.display)) for c in case.codes),
        series=tuple(series_refs), key_images=tuple(keys), key_images_from_manifest=from_manifest,
    )


def _manifest_references(case: Case, blobs: BlobStore) -> list[str]:
    """SOP Instance UIDs the case's TCE manifests (KOS instances) reference, first seen first."""
    found: dict[str, None] = {}
    for study in case.studies:
        for series in study.series:
            for instance in series.instances:
                if instance.sop_class_uid != KOS_SOP_CLASS:
                    continue
                with blobs.open(instance.blob_sha256) as f:
                    ds = dcmread(f, stop_before_pixels=True)
                if not is_manifest(ds):
                    continue
                try:
                    manifest = parse_manifest(ds)
                except NotAManifest:
                    continue
                found.update((r.sop_instance_uid, None) for r in manifest.references)
    return list(found)


# --- pixels ----------------------------------------------------------------------------------

def read(blobs: BlobStore, sha256: str) -> Dataset:
    with blobs.open(sha256) as f:
        ds = dcmread(f)
    if "PixelData" not in ds:
        raise InvalidInput(f"a stored object of SOP class {ds.get('SOPClassUID', '?')} has no image")
    return ds


def frame_count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def frames(ds: Dataset) -> Iterator[np.ndarray]:
    """Each frame's stored values, decoded (YBR as RGB), one at a time."""
    try:
        yield from iter_pixels(ds)
    except InvalidInput:
        raise
    except Exception as exc:  # no decoder for this transfer syntax, or broken pixel data
        raise InvalidInput(f"cannot decode pixel data: {exc}") from exc


def first_frame(ds: Dataset) -> np.ndarray:
    for pixels in frames(ds):
        return pixels
    raise InvalidInput("the pixel data holds no frame")


def saved_window(display: Display) -> Window | None:
    if display.window_center is None or display.window_width is None:
        return None
    return Window(display.window_center, display.window_width)


def is_grey(ds: Dataset) -> bool:
    return int(ds.get("SamplesPerPixel", 1) or 1) == 1 and ds.get("PhotometricInterpretation") != "PALETTE COLOR"


def has_own_window(ds: Dataset) -> bool:
    return "WindowCenter" in ds or "VOILUTSequence" in ds


def render_frame(ds: Dataset, pixels: np.ndarray, display: Display, fallback: Window | None = None) -> Image.Image:
    """One frame as an 8-bit L or RGB image: the series' saved window, else the image's own
    VOI, else ``fallback`` (a movie's one window for all frames), else min/max; then the saved crop
    and square pixels."""
    window = saved_window(display)
    if window is None and fallback is not None and is_grey(ds) and not has_own_window(ds):
        window = fallback
    image = frame_to_image(ds, pixels, window)
    return square_pixels(crop(image, display.crop), ds)


def render_image(blobs: BlobStore, ref: ImageRef) -> Image.Image:
    """An image's first frame (what the viewer opens a multi-frame object at), as saved."""
    ds = read(blobs, ref.sha256)
    return render_frame(ds, first_frame(ds), ref.display)


def crop(image: Image.Image, saved: Crop | None) -> Image.Image:
    """The saved displayed region, less what lies outside the image (the viewer's margins)."""
    if saved is None:
        return image
    left, top = max(round(saved.x), 0), max(round(saved.y), 0)
    right, bottom = min(round(saved.x + saved.width), image.width), min(round(saved.y + saved.height), image.height)
    if right - left < 2 or bottom - top < 2:
        return image  # the rectangle misses the image: show all of it rather than nothing
    return image.crop((left, top, right, bottom))


def square_pixels(image: Image.Image, ds: Dataset) -> Image.Image:
    """Stretch rows or columns so that non-square pixels (Pixel Spacing, Pixel Aspect Ratio) look right."""
    ratio = _row_to_column(ds)
    if ratio is None or abs(ratio - 1) < 0.01 or not 0.1 < ratio < 10:
        return image
    if ratio > 1:
        return image.resize((image.width, round(image.height * ratio)), Image.Resampling.LANCZOS)
    return image.resize((round(image.width / ratio), image.height), Image.Resampling.LANCZOS)


def _row_to_column(ds: Dataset) -> float | None:
    try:
        if "PixelSpacing" in ds and len(ds.PixelSpacing) == 2 and float(ds.PixelSpacing[1]) > 0:
            return float(ds.PixelSpacing[0]) / float(ds.PixelSpacing[1])
        if "PixelAspectRatio" in ds and len(ds.PixelAspectRatio) == 2 and int(ds.PixelAspectRatio[1]) > 0:
            return int(ds.PixelAspectRatio[0]) / int(ds.PixelAspectRatio[1])
    except (TypeError, ValueError):
        return None
    return None


def value_range_window(datasets_and_frames: Iterator[tuple[Dataset, np.ndarray]]) -> Window | None:
    """A window spanning the smallest to largest modality value of all grey frames, so that a movie
    without a saved or own window does not flicker from frame to frame."""
    low, high = np.inf, -np.inf
    for ds, pixels in datasets_and_frames:
        if not is_grey(ds) or has_own_window(ds):
            continue
        values = apply_modality_lut(pixels, ds)
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    if not np.isfinite(low) or high <= low:
        return None
    return Window(center=(low + high) / 2 + 0.5, width=high - low + 1, function="LINEAR")


def jpeg_bytes(image: Image.Image, quality: int = 92) -> bytes:
    """Baseline JPEG with no metadata (no EXIF, comment or ICC profile)."""
    out = io.BytesIO()
    image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
        out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()

