"""A case's images as 8-bit JPEGs in a zip, windowed and cropped as each series is saved to open.

Without a series: the key images (the TCE manifest's, else the middle image of each series).
With one: every image of it, every frame of a multi-frame image counted as an image. Each file
is ``case-{id}-series-{n}-image-{k}.jpg``; the JPEGs carry no metadata and the zip nothing else.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator

from PIL import Image

from archive.blobs import BlobStore
from archive.errors import InvalidInput

from .case_render import CasePlan, ImageRef, frames, jpeg_bytes, read, render_frame, render_image


def file_name(case_id: int, series_label: int, number: int) -> str:
    return f"case-{case_id}-series-{series_label}-image-{number}.jpg"


def key_images(plan: CasePlan, blobs: BlobStore) -> Iterator[tuple[str, Image.Image]]:
    for ref in plan.key_images:
        yield file_name(plan.case_id, ref.series_label, ref.number), render_image(blobs, ref)


def series_images(plan: CasePlan, blobs: BlobStore, series_id: int) -> Iterator[tuple[str, Image.Image]]:
    series = plan.series_by_id(series_id)
    number = 0
    for ref in series.images:
        for image in _all_frames(blobs, ref):
            number += 1
            yield file_name(plan.case_id, series.label, number), image


def _all_frames(blobs: BlobStore, ref: ImageRef) -> Iterator[Image.Image]:
    ds = read(blobs, ref.sha256)
    for pixels in frames(ds):
        yield render_frame(ds, pixels, ref.display)


def build_zip(plan: CasePlan, blobs: BlobStore, series_id: int | None = None, quality: int = 92) -> bytes:
    images = key_images(plan, blobs) if series_id is None else series_images(plan, blobs, series_id)
    out = io.BytesIO()
    count = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:  # JPEGs do not shrink
        for name, image in images:
            member = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            member.external_attr = 0o644 << 16
            archive.writestr(member, jpeg_bytes(image, quality))
            count += 1
    if count == 0:
        raise InvalidInput(f"case {plan.case_id} has no image to export")
    return out.getvalue()
