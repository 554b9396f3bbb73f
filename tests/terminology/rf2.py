"""A tiny SNOMED CT release in RF2 Snapshot format, for tests (SNOMED CT itself is licensed).

    64572001 Disease
    ├── 363346000 Malignant neoplastic disease
    │   ├── 25370001 Hepatocellular carcinoma  (synonyms: Hepatoma, Liver cell carcinoma)
    │   └── 93870000 Malignant neoplasm of liver
    └── 233604007 Pneumonia

plus what a loader must ignore: an inactive concept (with its description and is-a), an
inactive synonym, an inactive is-a and a finding-site relationship.
"""

from __future__ import annotations

from pathlib import Path

DISEASE = "64572001"
MALIGNANT = "363346000"
HCC = "25370001"
LIVER_MALIGNANCY = "93870000"
PNEUMONIA = "233604007"
INACTIVE = "157000009"
LIVER_STRUCTURE = "10200004"  # a finding site; not a concept of this release

ACTIVE_CODES = {DISEASE, MALIGNANT, HCC, LIVER_MALIGNANCY, PNEUMONIA}

VERSION = "INT_20250101"
_TIME, _MODULE = "20250101", "900000000000207008"
_FSN, _SYNONYM, _IS_A, _FINDING_SITE = "900000000000003001", "900000000000013009", "116680003", "363698007"

CONCEPTS = [
    # id, active
    (DISEASE, "1"), (MALIGNANT, "1"), (HCC, "1"), (LIVER_MALIGNANCY, "1"), (PNEUMONIA, "1"), (INACTIVE, "0"),
]
DESCRIPTIONS = [
    # conceptId, active, typeId, term
    (DISEASE, "1", _FSN, "Disease (disorder)"),
    (DISEASE, "1", _SYNONYM, "Disease"),
    (MALIGNANT, "1", _FSN, "Malignant neoplastic disease (disorder)"),
    (MALIGNANT, "1", _SYNONYM, "Malignant neoplastic disease"),
    (HCC, "1", _FSN, "Hepatocellular carcinoma (disorder)"),
    (HCC, "1", _SYNONYM, "Hepatocellular carcinoma"),
    (HCC, "1", _SYNONYM, "Hepatoma"),
    (HCC, "1", _SYNONYM, "Liver cell carcinoma"),
    (HCC, "0", _SYNONYM, "Liver cell cancer (retired)"),
    (LIVER_MALIGNANCY, "1", _FSN, "Malignant neoplasm of liver (disorder)"),
    (PNEUMONIA, "1", _FSN, "Pneumonia (disorder)"),
    (PNEUMONIA, "1", _SYNONYM, "Pneumonia"),
    (INACTIVE, "1", _FSN, "Retired hepatic disorder (disorder)"),
]
RELATIONSHIPS = [
    # sourceId, destinationId, active, typeId
    (MALIGNANT, DISEASE, "1", _IS_A),
    (HCC, MALIGNANT, "1", _IS_A),
    (LIVER_MALIGNANCY, MALIGNANT, "1", _IS_A),
    (PNEUMONIA, DISEASE, "1", _IS_A),
    (PNEUMONIA, MALIGNANT, "0", _IS_A),
    (HCC, LIVER_STRUCTURE, "1", _FINDING_SITE),
    (INACTIVE, DISEASE, "1", _IS_A),
]


def _table(path: Path, header: str, rows: list[tuple[str, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\r\n" for row in [tuple(header.split()), *rows]), encoding="utf-8")


def write_rf2_fixture(folder: Path) -> Path:
    """Write the release under ``folder`` as SNOMED International lays it out; returns ``folder``."""
    terminology = folder / "SnomedCT_TestRF2_PRODUCTION" / "Snapshot" / "Terminology"
    _table(
        terminology / f"sct2_Concept_Snapshot_{VERSION}.txt",
        "id effectiveTime active moduleId definitionStatusId",
        [(code, _TIME, active, _MODULE, "900000000000074008") for code, active in CONCEPTS],
    )
    _table(
        terminology / f"sct2_Description_Snapshot-en_{VERSION}.txt",
        "id effectiveTime active moduleId conceptId languageCode typeId term caseSignificanceId",
        [
            (f"{n}011", _TIME, active, _MODULE, code, "en", type_id, term, "900000000000448009")
            for n, (code, active, type_id, term) in enumerate(DESCRIPTIONS, start=1)
        ],
    )
    _table(
        terminology / f"sct2_Relationship_Snapshot_{VERSION}.txt",
        "id effectiveTime active moduleId sourceId destinationId relationshipGroup typeId characteristicTypeId modifierId",
        [
            (f"{n}021", _TIME, active, _MODULE, source, destination, "0", type_id, "900000000000011006", "900000000000451002")
            for n, (source, destination, active, type_id) in enumerate(RELATIONSHIPS, start=1)
        ],
    )
    return folder
