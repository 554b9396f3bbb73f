"""A cine loop of one series: the frames of a multi-frame image, or the images of a stack in
Instance Number order (every frame of each), windowed and cropped as the series is saved to open.

H.264 (yuv420p, so any player and PowerPoint plays it) in MP4 with the index at the front, or
Motion JPEG in AVI, encoded with PyAV (FFmpeg's libraries). The frame rate is the object's Cine
Rate, else its Frame Time, else its Recommended Display Frame Rate, else 10 frames a second.
Nothing of the DICOM header goes into the file; FFmpeg writes only its own name and settings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset

from archive.blobs import BlobStore
from archive.errors import InvalidInput

from .case_render import (
    CasePlan, SeriesRef, frame_count, frames, has_own_window, is_grey, read, render_frame, saved_window,
    value_range_window,
)

DEFAULT_FPS = 10.0
MAX_SIDE = 1920  # larger frames are scaled down: a teaching movie, not a diagnostic copy
CONTAINERS = {
    # name: (FFmpeg muxer, codec, pixel format, codec options, media type, file extension)
    "mp4": ("mp4", "libx264", "yuv420p", {"crf": "18", "preset": "veryfast"}, "video/mp4", "mp4"),
    "avi": ("avi", "mjpeg", "yuvj420p", {}, "video/x-msvideo", "avi"),
}


@dataclass(frozen=True)
class Movie:
    data: bytes
    media_type: str
    extension: str
    frames: int
    fps: float
    width: int
    height: int


def frame_rate(ds: Dataset) -> float:
    """Frames a second from Cine Rate (0018,0040), Frame Time (0018,1063, ms) or Recommended
    Display Frame Rate (0008,2144); :data:`DEFAULT_FPS` when none is usable."""
    frame_time = _number(ds.get("FrameTime"))
    candidates = (_number(ds.get("CineRate")), 1000.0 / frame_time if frame_time else None,
                  _number(ds.get("RecommendedDisplayFrameRate")))
    for fps in candidates:
        if fps is not None and 0.5 <= fps <= 240:
            return fps
    return DEFAULT_FPS


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def build_movie(plan: CasePlan, blobs: BlobStore, series_id: int, container: str = "mp4") -> Movie:
    if container not in CONTAINERS:
        raise InvalidInput(f"format {container!r}: one of {', '.join(CONTAINERS)}")
    series = plan.series_by_id(series_id)
    headers = [_header(blobs, ref.sha256) for ref in series.images]
    total = sum(frame_count(ds) for ds in headers)
    if total < 2:
        raise InvalidInput(f"series {series_id} has a single image: there is no movie to make of it")
    fps = next((frame_rate(ds) for ds in headers if frame_count(ds) > 1), None) or frame_rate(headers[0])
    fallback = None
    if saved_window(series.display) is None and is_grey(headers[0]) and not has_own_window(headers[0]):
        fallback = value_range_window(_decoded(blobs, series))  # one window for the whole loop
    images = (render_frame(ds, pixels, series.display, fallback) for ds, pixels in _decoded(blobs, series))
    return _encode(images, total, fps, container)


def _header(blobs: BlobStore, sha256: str) -> Dataset:
    with blobs.open(sha256) as f:
        return dcmread(f, stop_before_pixels=True)


def _decoded(blobs: BlobStore, series: SeriesRef) -> Iterator[tuple[Dataset, object]]:
    for ref in series.images:
        ds = read(blobs, ref.sha256)
        for pixels in frames(ds):
            yield ds, pixels


def _encode(images: Iterator[Image.Image], total: int, fps: float, container: str) -> Movie:
    muxer, codec, pix_fmt, options, media_type, extension = CONTAINERS[container]
    rate = Fraction(fps).limit_denominator(1001)
    first = next(images)
    width, height = _even_size(first)
    count = 0
    with tempfile.TemporaryDirectory(prefix="casebank-movie-") as folder:
        path = Path(folder) / f"movie.{extension}"
        # the MP4 index goes to the front (faststart), which FFmpeg does by re-reading a named file
        with av.open(str(path), "w", format=muxer,
                     options={"movflags": "+faststart"} if muxer == "mp4" else {}) as output:
            stream = output.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.options = dict(options)
            if codec == "mjpeg":
                stream.codec_context.qscale = 2
            for image in _chain(first, images):
                frame = av.VideoFrame.from_image(_canvas(image, width, height))
                frame.pts = count
                output.mux(stream.encode(frame))
                count += 1
            output.mux(stream.encode(None))
        data = path.read_bytes()
    if count != total:
        raise InvalidInput(f"the series' images decoded to {count} frames, not the {total} its headers give")
    return Movie(data, media_type, extension, count, float(rate), width, height)


def _chain(first: Image.Image, rest: Iterator[Image.Image]) -> Iterator[Image.Image]:
    yield first
    yield from rest


def _even_size(image: Image.Image) -> tuple[int, int]:
    """The first frame's size, scaled to fit :data:`MAX_SIDE`, rounded up to even sides (yuv420p)."""
    width, height = image.size
    scale = min(1.0, MAX_SIDE / max(width, height))
    width, height = max(round(width * scale), 2), max(round(height * scale), 2)
    return width + width % 2, height + height % 2


def _canvas(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` fitted, centred, on a black frame of the movie's size (a padding row or column
    makes odd sides even; a frame of another size is scaled to fit)."""
    image = image.convert("RGB")
    if image.size == (width, height):
        return image
    if image.width > width or image.height > height or (image.width < width - 1 and image.height < height - 1):
        scale = min(width / image.width, height / image.height)
        image = image.resize((max(round(image.width * scale), 1), max(round(image.height * scale), 1)),
                             Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    return canvas
