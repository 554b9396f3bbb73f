"""Where the image itself is: the ultrasound scan area, from the header or from a cine's motion.

An ultrasound object's annotation (patient name, dates, settings) lies outside its scan area;
when that area is known everything outside it can be masked and nothing inside it touched, as
SlicerUltrasound's AnonymizeUltrasound does. It is known from, in this order of trust:

* the Sequence of Ultrasound Regions (0018,6011), when its rectangles fit the image (files
  downscaled or cropped after acquisition keep regions that describe the original);
* a device template in ``pixel_regions.json`` with a ``scan_area``;
* the pixels that change across a cine: the scan moves, the annotation does not.

Areas are rectangles ``(x, y, width, height)``; a sector is kept as its bounding rectangle, so the
corners of that rectangle outside the fan are left to text detection rather than masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydicom.dataset import Dataset

MIN_AREA_SHARE = 0.10
"""A scan area smaller than this share of the image is not believed (a stray region or motion)."""
MIN_CINE_FRAMES = 8
MOTION_LEVEL = 2.0
"""Standard deviation over frames (8-bit) above which a pixel belongs to the moving scan (the
fan's dark edges move little: at 6 a real echo cine lost a third of its sector)."""
FAINT_MOTION_LEVEL = 1.0
"""Faint motion, counted only where it touches the clear motion (JPEG noise around static text
reaches it too, but away from the scan)."""


@dataclass(frozen=True)
class ScanArea:
    """The rectangles that are the image, and where they came from (for the audit and preview)."""

    rectangles: tuple[tuple[int, int, int, int], ...]
    source: str  # "ultrasound regions", "template <name>", "cine motion"

    def mask(self, rows: int, columns: int) -> np.ndarray:
        inside = np.zeros((rows, columns), dtype=bool)
        for x, y, w, h in self.rectangles:
            inside[y : y + h, x : x + w] = True
        return inside

    def contains(self, x: int, y: int, width: int, height: int) -> bool:
        """True when the centre of the box lies inside the area."""
        cx, cy = x + width / 2, y + height / 2
        return any(rx <= cx < rx + rw and ry <= cy < ry + rh for rx, ry, rw, rh in self.rectangles)


def from_ultrasound_regions(ds: Dataset, rows: int, columns: int) -> tuple[ScanArea | None, str]:
    """The union of the object's ultrasound regions, or None and why not."""
    regions = ds.get("SequenceOfUltrasoundRegions")
    if not regions:
        return None, ""
    rectangles = []
    for item in regions:
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)
        except (AttributeError, TypeError, ValueError):
            return None, "ultrasound regions without a location: not used"
        # Max X1 / Y1 are inclusive; devices often write the image's width or height itself
        if not (0 <= x0 <= x1 <= columns and 0 <= y0 <= y1 <= rows):
            return None, f"ultrasound regions describe a larger image than {columns}x{rows}: not used"
        rectangles.append((x0, y0, min(x1 + 1, columns) - x0, min(y1 + 1, rows) - y0))
    area = ScanArea(tuple(rectangles), "ultrasound regions")
    if area.mask(rows, columns).mean() < MIN_AREA_SHARE:
        return None, "ultrasound regions cover too little of the image: not used"
    return area, ""


def from_motion(gray: np.ndarray) -> ScanArea | None:
    """The bounding rectangle of the largest moving area of a cine ``(frames, rows, columns)``.

    Hysteresis: the largest area moving clearly (:data:`MOTION_LEVEL`) is the seed, grown by
    every faintly moving area (:data:`FAINT_MOTION_LEVEL`) touching it, because the dark flanks
    of a fan and its far field move least and a rectangle around the seed alone cuts them off.
    """
    if gray.shape[0] < MIN_CINE_FRAMES:
        return None
    rows, columns = gray.shape[1:]
    spread = gray.std(axis=0)
    size = max(5, (min(rows, columns) // 40) | 1)
    kernel = np.ones((size, size), np.uint8)
    moving = cv2.morphologyEx((spread > MOTION_LEVEL).astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, kernel)
    count, seeds, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    faint = cv2.morphologyEx((spread > FAINT_MOTION_LEVEL).astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    _, areas = cv2.connectedComponents(faint, connectivity=8)
    touching = np.unique(areas[seeds == largest])
    grown = np.isin(areas, touching[touching > 0]) | (seeds == largest)
    ys, xs = np.nonzero(grown)
    x, y, w, h = int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
    if w * h < MIN_AREA_SHARE * rows * columns:
        return None
    return ScanArea(((x, y, w, h),), "cine motion")


def outside(area: ScanArea, rows: int, columns: int) -> list[tuple[int, int, int, int]]:
    """Rectangles covering exactly what lies outside ``area`` (row bands of equal coverage)."""
    inside = area.mask(rows, columns)
    result: list[tuple[int, int, int, int]] = []
    start = 0
    while start < rows:
        end = start + 1
        while end < rows and np.array_equal(inside[end], inside[start]):
            end += 1
        row = inside[start]
        column = 0
        while column < columns:
            if row[column]:
                column += 1
                continue
            run = column
            while run < columns and not row[run]:
                run += 1
            result.append((column, start, run - column, end - start))
            column = run
        start = end
    return result
