"""Code system names: the canonical ones Casebank stores, and the spellings that map to them."""

from __future__ import annotations

ICD10 = "ICD10"
SNOMED = "SNOMED"
ACR = "ACR"
RADLEX = "RADLEX"

BUILT_IN = (ICD10,)
"""Systems that ship with Casebank and need no loading."""

LOADABLE = (SNOMED, ACR, RADLEX)
"""Systems whose release the user provides (they are licensed or large)."""

KNOWN = (*BUILT_IN, *LOADABLE)

_ALIASES = {
    "I10": ICD10, "ICD10": ICD10, "ICD-10": ICD10,
    "SCT": SNOMED, "SRT": SNOMED, "SNM3": SNOMED, "SNOMED": SNOMED, "SNOMED-CT": SNOMED, "SNOMEDCT": SNOMED,
    "ACR": ACR,
    "RADLEX": RADLEX,
}
"""DICOM coding scheme designators (PS3.16 Table 8-1) and common spellings, upper case."""


def canonical_system(designator: str) -> str:
    """The canonical system name for a DICOM coding scheme designator or a common spelling.

    Case-insensitive; an unknown designator comes back upper-cased, otherwise unchanged.

    >>> canonical_system("SCT"), canonical_system("i10"), canonical_system("99local")
    ('SNOMED', 'ICD10', '99LOCAL')
    """
    key = designator.strip().upper()
    return _ALIASES.get(key, key)
