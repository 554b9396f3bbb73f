"""What makes burned-in text identifying: the object's own header values, and ID-like patterns.

Text read in the pixels is compared as OCR shows it: upper case, letters and digits only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

NAME_KEYWORDS = (
    "PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName", "ResponsiblePerson",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "NameOfPhysiciansReadingStudy",
)
PLACE_KEYWORDS = ("InstitutionName", "InstitutionalDepartmentName", "InstitutionAddress", "StationName")
ID_KEYWORDS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "PatientBirthDate", "StudyID", "StudyDate")
MIN_NAME_PART, MIN_IDENTIFIER = 2, 3
"""Shorter header values match too much unrelated text (as in ``identifying_values.json``)."""
MIN_SUBSTRING = 4
"""Header tokens shorter than this must match a whole word read, not part of one."""

ID_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a date", re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}\b")),
    ("a date", re.compile(r"\b\d{1,2}[-\s]?(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[-\s]?\d{2,4}\b", re.I)),
    ("an NHS number", re.compile(r"\b\d{3}[\s-]?\d{3}[\s-]?\d{4}\b")),
    ("an ID number", re.compile(r"\b(?=(?:[A-Z-]*\d){6})[A-Z0-9][A-Z0-9-]{5,}\b", re.I)),
    ("a DOB label", re.compile(r"\b(?:DOB|D\.O\.B|BORN|MRN|NHS|PATIENT|PAT\.?|NAME|ID)[:#]", re.I)),
)
"""Patterns of text that identifies whatever the header says: dates, NHS and other ID numbers
(six digits or more), and labelled fields."""


def normalised(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def header_identifiers(ds: Dataset) -> dict[str, str]:
    """Identifying header values as OCR would show them, each with the keyword it came from.

    Person names are split into their components: the ``^`` between them is never drawn as
    such. Dates are given in the day-first and month-first orders screens use as well as DICOM's.
    """
    found: dict[str, str] = {}
    for keyword in NAME_KEYWORDS + PLACE_KEYWORDS + ID_KEYWORDS:
        value = ds.get(keyword)
        if value in (None, ""):
            continue
        for item in value if isinstance(value, (MultiValue, list, tuple)) else [value]:
            text = str(item)
            if keyword in NAME_KEYWORDS or keyword in PLACE_KEYWORDS:
                parts = re.split(r"[\^=\s,.]+", text)
            elif keyword.endswith("Date") and re.fullmatch(r"\d{8}", text):
                parts = [text, text[6:8] + text[4:6] + text[:4], text[4:6] + text[6:8] + text[:4]]
            else:
                parts = [text]
            shortest = MIN_NAME_PART if keyword in NAME_KEYWORDS else MIN_IDENTIFIER
            for part in parts:
                token = normalised(part)
                if len(token) >= shortest and not (keyword in PLACE_KEYWORDS and token in _PLACE_WORDS):
                    found.setdefault(token, keyword)
    return found


_PLACE_WORDS = frozenset({"THE", "OF", "AND", "HOSPITAL", "CLINIC", "MEDICAL", "CENTER", "CENTRE", "HEALTH", "UNIVERSITY"})
"""Words of an institution's name that identify nothing on their own."""


def identifying(words: Sequence[str], identifiers: Mapping[str, str]) -> str:
    """Why the words read identify someone (``""`` when they do not)."""
    text = " ".join(words)
    tokens = [normalised(w) for w in words]
    joined = normalised(text)
    for token, keyword in identifiers.items():
        if len(token) >= MIN_SUBSTRING and token in joined or token in tokens:
            return f"matches {keyword} in the header"
    for label, pattern in ID_PATTERNS:
        if pattern.search(text):
            return f"looks like {label}"
    return ""


def keepable(words: Iterable[str], patterns: Sequence[re.Pattern[str]]) -> bool:
    """Every word is text that identifies nobody (an orientation label, a measurement)."""
    listed = [w for w in words if any(ch.isalnum() for ch in w)]
    return bool(listed) and all(any(p.fullmatch(w.strip(".,:;")) for p in patterns) for w in listed)
