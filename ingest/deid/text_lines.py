"""Finding burned-in text by its shape, then reading it: the detector behind Clean Pixel Data.

OCR run over a whole frame reads "words" in speckle, bone and Doppler signal, and blanking
them destroys findings. Here text is first found as what it looks like: a row of small,
high-contrast glyphs of one height on one baseline (OpenCV top-hat / black-hat and connected
components). Only those candidate lines are read, all of one view at once: each crop is scaled to
one text height and stacked on a white sheet that tesseract reads in a single run.

>>> lines = find_lines(gray_view)  # doctest: +SKIP
>>> read_lines(gray_view, lines)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image

MIN_GLYPH_HEIGHT = 5
"""Glyphs lower than this (pixels) are not legible; the smallest annotation fonts are 6-7 px."""
CONTRAST = 60
"""Top-hat (or black-hat) level, 8-bit, above which a pixel may belong to a glyph."""
SATURATED = 245
"""Text drawn at full intensity: where few pixels are this bright, they are read on their own."""
SATURATED_SHARE = 0.05
"""The saturated pass runs only when at most this share of the image is that bright."""
FLAT_BACKGROUND = 5.0
FLAT_RANGE = 16.0
"""Standard deviation and 5-95 percentile range (8-bit) of the ground around a line below which
it counts as plain: overlay text on a banner or on black (measured: 0-3 on real devices,
lossy JPEG included), not text over anatomy (3-10 in smooth lung on a radiograph)."""
GLYPH_CONTRAST = 30
MIN_GLYPH_SHARE = 0.15
"""Glyph pixels differ from the ground's median by more than this (8-bit) and make up at least
this share of the padded box (overlay text: 0.25-0.6)."""
READ_HEIGHT = 32
"""Crops are scaled so that their glyphs are this many pixels high before tesseract reads them."""
SHEET_GAP = 24
OCR_CONFIG = "--psm 6"
OCR_TIMEOUT_S = 120


class Box:
    """Right and bottom edges (exclusive) of anything with ``x, y, width, height``."""

    x: int
    y: int
    width: int
    height: int

    @property
    def x1(self) -> int:
        return self.x + self.width

    @property
    def y1(self) -> int:
        return self.y + self.height


@dataclass(frozen=True)
class Glyph(Box):
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float


@dataclass(frozen=True)
class TextLine(Box):
    """A row of glyphs; ``words`` is what tesseract read in it (empty until :func:`read_lines`).

    ``polarity`` is ``"bright"`` (light text on darker ground), ``"dark"`` or ``"saturated"``
    (drawn at full intensity, found by level alone). ``flat`` says the ground around the glyphs
    is uniform: a banner or black band, not anatomy.
    """

    x: int
    y: int
    width: int
    height: int
    glyphs: int
    polarity: str
    flat: bool
    uniform: bool
    words: tuple[Word, ...] = field(default=())

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def read_with(self, confidence: float) -> list[Word]:
        """The words read at least this surely that contain a letter or digit."""
        return [w for w in self.words if w.confidence >= confidence and any(c.isalnum() for c in w.text)]

    def overlaps(self, other: TextLine) -> float:
        """Shared area as a share of the smaller line."""
        w = min(self.x1, other.x1) - max(self.x, other.x)
        h = min(self.y1, other.y1) - max(self.y, other.y)
        if w <= 0 or h <= 0:
            return 0.0
        return (w * h) / min(self.width * self.height, other.width * other.height)


def _kernel_sizes(rows: int, columns: int) -> list[int]:
    """Top-hat sizes: one a little wider than the strokes of annotation fonts, and for larger
    images one as large as the tallest text looked for (labels drawn in big, bold letters)."""
    small = max(7, (min(rows, columns) // 40) | 1)
    large = (max(12, rows // 6) + 2) | 1
    return [small, large] if large > 2 * small else [small]


def _glyphs(binary: np.ndarray, min_height: int, max_height: int) -> list[Glyph]:
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    found = []
    for x, y, w, h, area in stats[1:count]:
        if h < min_height or h > max_height or w > 8 * h or area < 6:
            continue
        if 0.08 <= area / (w * h) <= 0.95:
            found.append(Glyph(int(x), int(y), int(w), int(h)))
    return found


def _group(glyphs: list[Glyph], single: bool = False) -> list[list[Glyph]]:
    """Glyphs sharing a line: overlapping by half the lower one's height, at most twice as tall
    as each other, and no further apart than 1.2 times the taller one's height."""
    glyphs = sorted(glyphs, key=lambda g: g.x)
    parent = list(range(len(glyphs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(glyphs):
        for j in range(i + 1, len(glyphs)):
            b = glyphs[j]
            if b.x > a.x1 + 1.2 * max(a.height, b.height):
                break
            shared = min(a.y1, b.y1) - max(a.y, b.y)
            if shared >= 0.5 * min(a.height, b.height) and max(a.height, b.height) <= 2 * min(a.height, b.height):
                parent[root(j)] = root(i)
    groups: dict[int, list[Glyph]] = {}
    for i, glyph in enumerate(glyphs):
        groups.setdefault(root(i), []).append(glyph)
    # at the large scale, a single wide component is letters that touch (bold, large fonts)
    return [m for m in groups.values() if len(m) >= 2 or (single and m[0].width >= 1.5 * m[0].height)]


def _flat(gray: np.ndarray, x0: int, y0: int, x1: int, y1: int, pad: int) -> bool:
    """Overlay text on a plain ground: around the line, the pixels that are not glyphs (far
    from the median) hardly vary, and glyphs are a fair share of the box. Anatomy that happens
    to look like a row of glyphs (lung markings, trabeculae) fails one or the other."""
    rows, columns = gray.shape
    around = gray[max(0, y0 - pad) : min(rows, y1 + pad), max(0, x0 - pad) : min(columns, x1 + pad)].astype(np.float32)
    glyph = np.abs(around - np.median(around)) > GLYPH_CONTRAST
    glyph = cv2.dilate(glyph.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ground = around[~glyph]
    if ground.size == 0 or glyph.mean() < MIN_GLYPH_SHARE:
        return False
    return float(ground.std()) <= FLAT_BACKGROUND and float(np.percentile(ground, 95) - np.percentile(ground, 5)) <= FLAT_RANGE


def find_lines(gray: np.ndarray) -> list[TextLine]:
    """Candidate text lines of one 8-bit view (text may be lighter or darker than its ground)."""
    rows, columns = gray.shape
    max_height = max(12, rows // 6)
    passes: list[tuple[str, np.ndarray, int, int]] = []
    sizes = _kernel_sizes(rows, columns)
    for index, size in reversed(list(enumerate(sizes))):  # large first: a bold line, not its fragments
        # the large scale looks only for glyphs the small one cannot hold whole
        low, high = (MIN_GLYPH_HEIGHT, max_height) if len(sizes) == 1 else ((MIN_GLYPH_HEIGHT, 3 * size) if index == 0 else (2 * sizes[0], max_height))
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
        passes += [
            ("bright", (cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, kernel) >= CONTRAST).astype(np.uint8), low, high),
            ("dark", (cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel) >= CONTRAST).astype(np.uint8), low, high),
        ]
    saturated = (gray >= SATURATED).astype(np.uint8)
    if 0 < saturated.mean() <= SATURATED_SHARE:
        passes.insert(0, ("saturated", saturated, MIN_GLYPH_HEIGHT, max_height))
    lines: list[TextLine] = []
    for polarity, binary, low, high in passes:
        for members in _group(_glyphs(binary, low, high), single=low > MIN_GLYPH_HEIGHT):
            x0, y0 = min(g.x for g in members), min(g.y for g in members)
            x1, y1 = max(g.x1 for g in members), max(g.y1 for g in members)
            heights = np.array([g.height for g in members], dtype=float)
            bottoms = np.array([g.y1 for g in members], dtype=float)
            uniform = heights.std() <= 0.2 * heights.mean() and bottoms.std() <= 0.25 * heights.mean()
            pad = max(2, (y1 - y0) // 2)
            line = TextLine(x0, y0, x1 - x0, y1 - y0, len(members), polarity,
                            _flat(gray, x0, y0, x1, y1, pad), bool(uniform))
            if any(line.overlaps(other) > 0.5 for other in lines):
                continue  # the same line seen by an earlier pass (dark gaps between bright letters)
            lines.append(line)
    return sorted(lines, key=lambda line: (line.y, line.x))


def _crop(gray: np.ndarray, line: TextLine) -> np.ndarray:
    """The line as dark text on white, its glyphs :data:`READ_HEIGHT` pixels high."""
    pad = max(2, line.height // 3)
    rows, columns = gray.shape
    crop = gray[max(0, line.y - pad) : min(rows, line.y1 + pad), max(0, line.x - pad) : min(columns, line.x1 + pad)]
    crop = crop.astype(np.float32)
    if line.polarity == "saturated":
        crop = np.where(crop >= SATURATED, 0.0, 255.0)
    else:
        if line.polarity == "bright":
            crop = 255.0 - crop
        low, high = np.percentile(crop, 2), np.percentile(crop, 98)
        crop = np.clip((crop - low) * 255.0 / max(high - low, 1.0), 0, 255)
    scale = READ_HEIGHT / max(line.height, 1)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return cv2.resize(crop.astype(np.uint8), size, interpolation=cv2.INTER_CUBIC)


def read_lines(gray: np.ndarray, lines: Sequence[TextLine]) -> list[TextLine]:
    """``lines`` with the words tesseract reads in each, from one run over a sheet of crops.

    Raises whatever pytesseract raises (missing binary, timeout, errors): the caller fails closed.
    """
    if not lines:
        return []
    import pytesseract  # imported here so that a missing wrapper fails closed, not at import

    # One thread per tesseract process: with OpenMP on a loaded two-core machine one run took
    # ten times longer. An operator's explicit setting is respected.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    crops = [_crop(gray, line) for line in lines]
    width = max(c.shape[1] for c in crops) + 2 * SHEET_GAP
    height = sum(c.shape[0] + SHEET_GAP for c in crops) + SHEET_GAP
    sheet = np.full((height, width), 255, dtype=np.uint8)
    slots, top = [], SHEET_GAP
    for crop in crops:
        sheet[top : top + crop.shape[0], SHEET_GAP : SHEET_GAP + crop.shape[1]] = crop
        slots.append((top, top + crop.shape[0]))
        top += crop.shape[0] + SHEET_GAP
    data = pytesseract.image_to_data(
        Image.fromarray(sheet), lang="eng", config=OCR_CONFIG, output_type=pytesseract.Output.DICT, timeout=OCR_TIMEOUT_S
    )
    words: list[list[Word]] = [[] for _ in lines]
    for text, conf, word_top, word_height in zip(data["text"], data["conf"], data["top"], data["height"], strict=True):
        text = str(text).strip()
        if not text or float(conf) < 0:
            continue
        middle = int(word_top) + int(word_height) / 2
        for index, (a, b) in enumerate(slots):
            if a <= middle <= b:
                words[index].append(Word(text, float(conf)))
                break
    return [replace(line, words=tuple(found)) for line, found in zip(lines, words, strict=True)]
