"""A DICOM frame rendered to PNG or JPEG, with its own VOI (window) settings or a window asked for,
for thumbnails, the case page and DICOMweb rendered resources."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

from archive.errors import InvalidInput


IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}


@dataclass(frozen=True)
class Window:
    """A VOI window as PS3.3 C.11.2.1.2 defines it; function is LINEAR, LINEAR_EXACT or SIGMOID."""

    center: float
    width: float
    function: str = "LINEAR"

    def apply(self, values: np.ndarray) -> np.ndarray:
        x, c, w = values.astype(np.float64), self.center, max(self.width, 1.0)
        function = self.function.upper()
        if function == "SIGMOID":
            return 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        if function == "LINEAR_EXACT":
            return ((x - c) / w + 0.5).clip(0, 1) * 255.0
        if function != "LINEAR":
            raise InvalidInput(f"window function {self.function!r} is not LINEAR, LINEAR_EXACT or SIGMOID")
        return ((x - (c - 0.5)) / max(w - 1.0, 1.0) + 0.5).clip(0, 1) * 255.0


def render_png(ds: Dataset, frame: int = 1, max_size: int | None = None) -> bytes:
    return render(ds, frame, viewport=(max_size, max_size) if max_size else None)


def render(
    ds: Dataset,
    frame: int = 1,
    *,
    viewport: tuple[int, int] | None = None,
    window: Window | None = None,
    media_type: str = "image/png",
    quality: int | None = None,
) -> bytes:
    """One frame as PNG or JPEG, fitted inside ``viewport`` (width, height) when given."""
    if "PixelData" not in ds:
        raise InvalidInput(f"instance {ds.get('SOPInstanceUID', '?')} has no image")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if not 1 <= frame <= frames:
        raise InvalidInput(f"frame {frame} is outside 1..{frames}")
    try:
        pixels = ds.pixel_array  # pydicom converts YBR to RGB itself
        if frames > 1:
            pixels = pixels[frame - 1]
    except Exception as exc:  # no decoder for this transfer syntax, or broken pixel data
        raise InvalidInput(f"cannot decode pixel data: {exc}") from exc
    image = to_image(ds, pixels, window)
    if viewport:
        image.thumbnail(viewport)
    out = io.BytesIO()
    options = {"quality": quality} if quality and media_type == "image/jpeg" else {}
    image.save(out, format=IMAGE_FORMATS[media_type], **options)
    return out.getvalue()


def to_image(ds: Dataset, pixels: np.ndarray, window: Window | None = None) -> Image.Image:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        return Image.fromarray(_stretch(pixels), mode="RGB")
    if photometric == "PALETTE COLOR":
        return Image.fromarray(_stretch(apply_color_lut(pixels, ds)), mode="RGB")
    values = apply_modality_lut(pixels, ds)
    if window is not None:
        grey = window.apply(values).astype(np.uint8)
    else:
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            values = apply_voi_lut(values, ds, index=0)
        grey = _stretch(values)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return Image.fromarray(grey, mode="L")


def _stretch(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return ((values - low) * (255.0 / (high - low))).clip(0, 255).astype(np.uint8)
