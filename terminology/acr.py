"""The ACR Index for Radiological Diagnoses from a CSV or TSV file.

The file has a header line and one code a row: ``code,display[,parent]`` (the second column may
be headed ``description``; a tab in the header line makes it tab-separated)::

    code,display,parent
    7,Gastrointestinal system,
    761,Liver,7
    761.3,Neoplasm of the liver,761

ACR Index codes are ``anatomy.pathology`` ("761.3": liver, neoplasm). The hierarchy is only
what the ``parent`` column says; a code that appears again adds its description as a synonym.
"""

from __future__ import annotations

from pathlib import Path

from .files import RowCounter, read_csv
from .model import Progress, Release, TerminologyError
from .systems import ACR

FORMAT = "an ACR Index CSV (code,display[,parent])"


def read_index(path: Path, progress: Progress | None = None) -> Release:
    """The codes, descriptions and parents of an ACR Index file."""
    release = Release(ACR, path.name)
    for line, row in read_csv(path, FORMAT, [("code",), ("display", "description")], RowCounter(progress)):
        code, display, parent = row.get("code", ""), row.get("display", ""), row.get("parent", "")
        if not code or not display:
            raise TerminologyError(f"{path}: line {line}: a row needs a code and a display")
        if code in release.displays:
            release.add(code, release.displays[code], synonyms=[display])
        else:
            release.add(code, display, parents=[parent] if parent else None)
    return release
