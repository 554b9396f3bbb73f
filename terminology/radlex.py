"""RadLex from the CSV that BioPortal exports (``RADLEX.csv`` or ``RADLEX.csv.gz``).

Columns used (others are ignored): ``Class ID`` (a URL ending in the RadLex ID, e.g.
``http://radlex.org/RID/RID5825``), ``Preferred Label``, ``Synonyms`` (separated by ``|``),
``Parents`` (URLs separated by ``|``) and, if present, ``Obsolete`` (``true`` drops the class).
Rows whose Class ID is not a RadLex ID, and parents that are not (``owl#Thing``), are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

from .files import RowCounter, read_csv
from .model import Progress, Release
from .systems import RADLEX

FORMAT = "a BioPortal RadLex CSV"
_RID = re.compile(r"RID\d+$")


def rid(url: str) -> str | None:
    """``http://radlex.org/RID/RID5825`` -> ``RID5825``; None for other URLs."""
    found = _RID.search(url.strip().rstrip("/"))
    return found.group() if found else None


def _split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split("|") if part.strip()]


def read_bioportal_csv(path: Path, progress: Progress | None = None) -> Release:
    """RadLex IDs with their preferred label, synonyms and parents."""
    release = Release(RADLEX, path.name)
    for _, row in read_csv(path, FORMAT, [("Class ID",), ("Preferred Label",)], RowCounter(progress)):
        code = rid(row["class id"])
        if code is None or row.get("obsolete", "").lower() == "true":
            continue
        synonyms = _split(row.get("synonyms", ""))
        display = row.get("preferred label", "") or (synonyms[0] if synonyms else code)
        parents = [p for p in map(rid, _split(row.get("parents", ""))) if p]
        release.add(code, display, synonyms=synonyms, parents=parents)
    return release
