"""A DICOM frame rendered to PNG with its own VOI (window) settings, for thumbnails and the case page."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

from archive.errors import InvalidInput


def render_png(ds: Dataset, frame: int = 1, max_size: int | None = None) -> bytes:
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
    image = _to_image(ds, pixels)
    if max_size:
        image.thumbnail((max_size, max_size))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _to_image(ds: Dataset, pixels: np.ndarray) -> Image.Image:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        return Image.fromarray(_stretch(pixels), mode="RGB")
    if photometric == "PALETTE COLOR":
        return Image.fromarray(_stretch(apply_color_lut(pixels, ds)), mode="RGB")
    values = apply_modality_lut(pixels, ds)
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
