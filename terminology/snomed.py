"""SNOMED CT from an RF2 release folder (Snapshot tables), as SNOMED International ships it.

The folder is searched recursively for three tab-separated tables (UTF-8, one header line):

- ``sct2_Concept_Snapshot_*.txt``:
  ``id effectiveTime active moduleId definitionStatusId``
- ``sct2_Description_Snapshot-en_*.txt``:
  ``id effectiveTime active moduleId conceptId languageCode typeId term caseSignificanceId``
- ``sct2_Relationship_Snapshot_*.txt``:
  ``id effectiveTime active moduleId sourceId destinationId relationshipGroup typeId characteristicTypeId modifierId``

Only active rows count. A concept's display is its fully specified name without the semantic
tag ("Hepatocellular carcinoma (disorder)" shows as "Hepatocellular carcinoma"); its active
synonyms are its other designations; its parents are the destinations of its active is-a
relationships. Several matching files (an edition with extensions) are read together.
"""

from __future__ import annotations

import re
from pathlib import Path

from .files import RowCounter, read_rf2
from .model import Progress, Release, TerminologyError
from .systems import SNOMED

CONCEPT_COLUMNS = ("id", "effectiveTime", "active", "moduleId", "definitionStatusId")
DESCRIPTION_COLUMNS = (
    "id", "effectiveTime", "active", "moduleId", "conceptId", "languageCode", "typeId", "term", "caseSignificanceId",
)
RELATIONSHIP_COLUMNS = (
    "id", "effectiveTime", "active", "moduleId", "sourceId", "destinationId", "relationshipGroup", "typeId",
    "characteristicTypeId", "modifierId",
)
CONCEPT_FILES = "sct2_Concept_Snapshot_*.txt"
DESCRIPTION_FILES = "sct2_Description_Snapshot-en_*.txt"
RELATIONSHIP_FILES = "sct2_Relationship_Snapshot_*.txt"

FSN = "900000000000003001"
SYNONYM = "900000000000013009"
IS_A = "116680003"
ACTIVE = "1"

_SEMANTIC_TAG = re.compile(r"\s*\([^()]*\)\s*$")


def without_semantic_tag(fsn: str) -> str:
    """``Hepatocellular carcinoma (disorder)`` -> ``Hepatocellular carcinoma``."""
    return _SEMANTIC_TAG.sub("", fsn) or fsn


def _tables(folder: Path, pattern: str) -> list[Path]:
    found = sorted(folder.rglob(pattern))
    if not found:
        raise TerminologyError(f"{folder}: not an RF2 release: no {pattern} below it")
    return found


def read_release(folder: Path, progress: Progress | None = None) -> Release:
    """Active concepts with display, synonyms and is-a parents from an RF2 release folder."""
    if not folder.is_dir():
        raise TerminologyError(f"{folder}: not an RF2 release folder (give the unzipped release's folder)")
    concept_files = _tables(folder, CONCEPT_FILES)
    description_files = _tables(folder, DESCRIPTION_FILES)
    relationship_files = _tables(folder, RELATIONSHIP_FILES)
    counter = RowCounter(progress)
    release = Release(SNOMED, concept_files[0].stem.partition("Snapshot_")[2])

    for path in concept_files:
        for _, (code, _time, active, *_rest) in read_rf2(path, CONCEPT_COLUMNS, counter):
            if active == ACTIVE:
                release.displays[code] = code  # until its name is read
    named: set[str] = set()
    for path in description_files:
        for _, fields in read_rf2(path, DESCRIPTION_COLUMNS, counter):
            active, code, type_id, term = fields[2], fields[4], fields[6], fields[7]
            if active != ACTIVE or code not in release.displays:
                continue
            if type_id == FSN:
                release.displays[code] = without_semantic_tag(term)
                named.add(code)
            elif type_id == SYNONYM:
                release.synonyms.setdefault(code, []).append(term)
    for code, synonyms in release.synonyms.items():
        if code not in named:  # no FSN: the first synonym names it
            release.displays[code] = synonyms[0]
    for path in relationship_files:
        for _, fields in read_rf2(path, RELATIONSHIP_COLUMNS, counter):
            active, source, destination, type_id = fields[2], fields[4], fields[5], fields[7]
            if active == ACTIVE and type_id == IS_A and source in release.displays:
                release.parents.setdefault(source, []).append(destination)
    return release
