"""Pixel cleaning benchmark: today's detector against the one it replaced, same images, one run.

Over the ground truth of ``tests/deid/pixel_truth.json`` (every image with pixel data in pydicom's
test files, pydicom-data and deid-data: burned-in lines measured by hand, and the images with no
text), per detector:

* identifying lines blanked: share of identifying truth lines (names, IDs, dates, institutions)
  whose box is at least 90 % covered by what the detector blanks;
* image blanked: share of the diagnostic image (truth image regions, minus identifying lines)
  blanked, mean over images with text; and how many no-text images got any rectangle;
* held: images the detector calls uncertain (held for a person) or fails on;
* seconds per image (decode, scan area, text lines, OCR) and the share inside tesseract.

The previous detector (OCR over whole upscaled frames, every low-confidence word blanked) is
loaded from git (``--before``, default the commit before issue 11) and runs in the same process.
No peer tool cleans burned-in text out of the box (dicognito and dicom-anonymizer leave pixels
alone; the ``deid`` package blanks fixed rectangles from its rule file), so the earlier version is
the comparison.

Run: ``.venv/bin/python bench/pixel_cleaning.py [--before 489cbcc]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import pytesseract
from pydicom import dcmread

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.deid import pixels  # noqa: E402
from tests.deid.pixel_corpus import Box, corpus_path, load_truth, no_text_files  # noqa: E402


def previous_detector(revision: str) -> ModuleType:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:ingest/deid/pixels.py"],
                            check=True, capture_output=True, text=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="casebank-bench-"))
    path = folder / "_pixels_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("ingest.deid._pixels_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@dataclass
class Case:
    """One corpus file and what should come out of it."""

    name: str
    rows: int
    columns: int
    identifying: list[Box] = field(default_factory=list)
    image_regions: list[Box] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return bool(self.image_regions)


def cases() -> list[Case]:
    found = []
    for image in load_truth():
        identifying = [line.box for line in image.lines if line.identifying]
        for name in image.files:
            found.append(Case(name, image.rows, image.columns, identifying, list(image.image_regions)))
    for name in no_text_files():
        found.append(Case(name, 0, 0))
    return found


def _mask(boxes: Iterable[Box], rows: int, columns: int) -> np.ndarray:
    mask = np.zeros((rows, columns), dtype=bool)
    for x, y, w, h in boxes:
        mask[max(0, y):y + h, max(0, x):x + w] = True
    return mask


class TesseractClock:
    """Seconds spent in pytesseract.image_to_data while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = pytesseract.image_to_data

    def __enter__(self) -> TesseractClock:
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return self._original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        pytesseract.image_to_data = timed
        return self

    def __exit__(self, *exc: object) -> None:
        pytesseract.image_to_data = self._original


def measure(module: ModuleType, corpus: list[Case]) -> dict[str, float]:
    scanned = held = no_text_boxed = 0
    identifying = identifying_blanked = 0
    image_blanked: list[float] = []
    with TesseractClock() as clock:
        start = time.perf_counter()
        for case in corpus:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(corpus_path(case.name), force=True)
                try:
                    if not module.needs_pixel_cleaning(ds):
                        findings = None
                    else:
                        findings = module.find_text_regions(ds)
                        scanned += 1
                except Exception:  # noqa: BLE001 - undecodable or a detector error: held
                    held += 1
                    continue
            boxes = [(r.x, r.y, r.width, r.height) for r in (findings.regions if findings else ())]
            held += bool(findings and findings.uncertain)
            if not case.has_text:
                no_text_boxed += bool(boxes)
                continue
            rows, columns = int(ds.Rows), int(ds.Columns)
            blanked = _mask(boxes, rows, columns)
            for box in case.identifying:
                identifying += 1
                identifying_blanked += _mask([box], rows, columns)[blanked].sum() >= 0.9 * box[2] * box[3]
            image = _mask(case.image_regions, rows, columns) & ~_mask(case.identifying, rows, columns)
            image_blanked.append(float((blanked & image).sum() / max(image.sum(), 1)))
        elapsed = time.perf_counter() - start
    return {
        "files": len(corpus), "scanned": scanned, "held": held, "seconds": elapsed,
        "per_image": elapsed / max(len(corpus), 1), "tesseract_share": clock.seconds / max(elapsed, 1e-9),
        "identifying": identifying, "identifying_blanked": identifying_blanked / max(identifying, 1),
        "image_blanked_mean": float(np.mean(image_blanked)) if image_blanked else 0.0,
        "image_blanked_max": max(image_blanked, default=0.0), "no_text_boxed": no_text_boxed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="489cbcc", help="git revision of the previous detector")
    args = parser.parse_args()
    corpus = cases()
    with_text = sum(case.has_text for case in corpus)
    results = {
        "casebank (text lines)": measure(pixels, corpus),
        f"previous ({args.before})": measure(previous_detector(args.before), corpus),
    }
    print(f"{len(corpus)} files: {with_text} with burned-in text, {len(corpus) - with_text} without")
    print(f"{'detector':24} {'scanned':>7} {'held':>5} {'ids blanked':>11} {'image blanked':>17} "
          f"{'no-text boxed':>13} {'total s':>8} {'s/file':>7} {'tesseract':>9}")
    for name, r in results.items():
        print(f"{name:24} {r['scanned']:7d} {r['held']:5d} {r['identifying_blanked']:11.1%} "
              f"{r['image_blanked_mean']:7.1%} (max {r['image_blanked_max']:4.0%}) {r['no_text_boxed']:13d} "
              f"{r['seconds']:8.1f} {r['per_image']:7.2f} {r['tesseract_share']:9.0%}")
    now, before = results.values()
    print("tesseract: seconds inside tesseract calls / total seconds, summed over threads (over 100% when OCR runs in parallel)")
    print(f"identifying lines: {now['identifying']}; ratio of total time (previous / now): "
          f"{before['seconds'] / max(now['seconds'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
