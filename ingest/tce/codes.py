"""Every coded concept of IHE TCE used by Casebank, defined once, and how to read codes back.

Two code families say the same things: the IHE Radiology Technical Framework codes (scheme
``IHERADTF``, values ``TCE...``) that the original TCE supplement introduced, and the DICOM
replacements (scheme ``DCM``, values ``1287xx``) added to PS3.16 later. Receivers in the field
(RSNA MIRC/CTP, dcm4chee) understand only the IHERADTF family, so Casebank *writes* IHERADTF
and *reads* both. Sources and the verification state of each row are in
``/work/shared/standards.md`` sections 1.5 and 1.6.

The lookup tables are read-only mappings keyed by ``(scheme designator, code value)``; use
:func:`lookup` to search them, which matches on the code value alone unless that value is
ambiguous across schemes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple, TypeVar

from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset

IHERADTF = "IHERADTF"
DCM = "DCM"
SCT = "SCT"
SRT = "SRT"  # SNOMED-RT style legacy designator, still written by older TCE actors

CodeKey = tuple[str, str]
"""``(coding scheme designator, code value)``, upper-cased and stripped."""

Purpose = Literal["teaching", "clinical_trial", "research", "publication"]
PURPOSES: tuple[Purpose, ...] = ("teaching", "clinical_trial", "research", "publication")


def _code(value: str, scheme: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


# --- Document titles (root concept name of the KOS manifest; CID 7010 / 7014) -------------

FOR_TEACHING_FILE_EXPORT = _code("TCE001", IHERADTF, "For Teaching File Export")
FOR_CLINICAL_TRIAL_EXPORT = _code("TCE002", IHERADTF, "For Clinical Trial Export")
FOR_RESEARCH_COLLECTION_EXPORT = _code("TCE007", IHERADTF, "For Research Collection Export")
# Only dcm4chee-web3 uses TCE008 and gives it no meaning; the DCM successor's meaning is used.
FOR_PUBLICATION_EXPORT = _code("TCE008", IHERADTF, "For Publication Export")

DCM_FOR_TEACHING_FILE_EXPORT = _code("128710", DCM, "For Teaching File Export")
DCM_FOR_CLINICAL_TRIAL_EXPORT = _code("128711", DCM, "For Clinical Trial Export")
DCM_FOR_RESEARCH_COLLECTION_EXPORT = _code("128713", DCM, "For Research Collection Export")
DCM_FOR_PUBLICATION_EXPORT = _code("128714", DCM, "For Publication Export")
# The general-purpose DICOM title; early MESA TCE tests used it. (113019 is NOT "For Teaching".)
DCM_FOR_TEACHING = _code("113004", DCM, "For Teaching")

# --- Manifest content items (TID 2010) ----------------------------------------------------

DOCUMENT_TITLE_MODIFIER = _code("113011", DCM, "Document Title Modifier")
KEY_OBJECT_DESCRIPTION = _code("113012", DCM, "Key Object Description")
OBSERVER_TYPE = _code("121005", DCM, "Observer Type")
PERSON = _code("121006", DCM, "Person")
PERSON_OBSERVER_NAME = _code("121008", DCM, "Person Observer Name")

# --- Delay reasons (Document Title Modifier values; CID 7015 for the DCM family) ----------

DELAY_FINAL_REPORT = _code("TCE011", IHERADTF, "Delay export until final report is available")
DELAY_CLINICAL_INFORMATION = _code(
    "TCE012", IHERADTF, "Delay export until clinical information is available"
)
DELAY_CONFIRMATION_OF_DIAGNOSIS = _code(
    "TCE013", IHERADTF, "Delay export until confirmation of diagnosis is available"
)
DELAY_HISTOPATHOLOGY = _code("TCE014", IHERADTF, "Delay export until histopathology is available")
DELAY_OTHER_LABORATORY_RESULTS = _code(
    "TCE015", IHERADTF, "Delay export until other laboratory results is available"
)
DELAY_PATIENT_DISCHARGED = _code("TCE016", IHERADTF, "Delay export until patient is discharged")
DELAY_PATIENT_DIES = _code("TCE017", IHERADTF, "Delay export until patient dies")
DELAY_EXPERT_REVIEW = _code("TCE018", IHERADTF, "Delay export until expert review is available")

DCM_DELAY_FINAL_REPORT = _code("128715", DCM, "Delay export until final report is available")
DCM_DELAY_CLINICAL_INFORMATION = _code(
    "128716", DCM, "Delay export until clinical information is available"
)
DCM_DELAY_CONFIRMATION_OF_DIAGNOSIS = _code(
    "128717", DCM, "Delay export until confirmation of diagnosis is available"
)
DCM_DELAY_HISTOPATHOLOGY = _code("128718", DCM, "Delay export until histopathology is available")
DCM_DELAY_OTHER_LABORATORY_RESULTS = _code(
    "128719", DCM, "Delay export until other laboratory results are available"
)
DCM_DELAY_PATIENT_DISCHARGED = _code("128720", DCM, "Delay export until patient is discharged")
DCM_DELAY_PATIENT_DIES = _code("128721", DCM, "Delay export until patient dies")
DCM_DELAY_EXPERT_REVIEW = _code("128722", DCM, "Delay export until expert review is available")

# --- ATFI document title (root concept name of the SR; CID 7018) --------------------------

ADDITIONAL_TEACHING_FILE_INFORMATION = _code(
    "TCE006", IHERADTF, "Additional Teaching File Information"
)
DCM_ADDITIONAL_TEACHING_FILE_INFORMATION = _code(
    "128712", DCM, "Additional Teaching File Information"
)

# --- ATFI concept names -------------------------------------------------------------------
# DICOM has no DCM codes for most of these, so they stay IHERADTF; the DCM ones are original.

AUTHOR = _code("TCE101", IHERADTF, "Author")
AFFILIATION = _code("TCE102", IHERADTF, "Affiliation")
CONTACT = _code("TCE103", IHERADTF, "Contact")
ABSTRACT = _code("TCE104", IHERADTF, "Abstract")
KEYWORDS = _code("TCE105", IHERADTF, "Keywords")
HISTORY = _code("121060", DCM, "History")
FINDING = _code("121071", DCM, "Finding")  # singular in DCM
DISCUSSION = _code("TCE106", IHERADTF, "Discussion")
DIFFERENTIAL_DIAGNOSIS = _code("111023", DCM, "Differential Diagnosis/Impression")
DIAGNOSIS = _code("TCE107", IHERADTF, "Diagnosis")
RADIOGRAPHIC_ANATOMY = _code("112005", DCM, "Radiographic anatomy")
PATHOLOGY = _code("111042", DCM, "Pathology")  # not TCE109
ORGAN_SYSTEM = _code("TCE108", IHERADTF, "Organ system")
MODALITY = _code("121139", DCM, "Modality")
CATEGORY = _code("TCE109", IHERADTF, "Category")
LEVEL = _code("TCE110", IHERADTF, "Level")
DIAGNOSIS_CONFIRMED = _code("TCE111", IHERADTF, "Diagnosis confirmed")
# DCM analogues of Category and Level; read as aliases, never written (the mapping is unstated).
DCM_TEACHING_FILE_CATEGORY = _code("128723", DCM, "Teaching File Category")
DCM_LEVEL_OF_DIFFICULTY = _code("128724", DCM, "Level of Difficulty")

# --- Category of teaching material (TCE109 values; CID 7017 for the DCM family) -----------

CATEGORY_MUSCULOSKELETAL = _code("TCE301", IHERADTF, "Musculoskeletal")
CATEGORY_PULMONARY = _code("TCE302", IHERADTF, "Pulmonary")
CATEGORY_CARDIOVASCULAR = _code("TCE303", IHERADTF, "Cardiovascular")
CATEGORY_GASTROINTESTINAL = _code("TCE304", IHERADTF, "Gastrointestinal")
CATEGORY_GENITOURINARY = _code("TCE305", IHERADTF, "Genitourinary")
CATEGORY_NEURO = _code("TCE306", IHERADTF, "Neuro")
CATEGORY_VASCULAR_INTERVENTIONAL = _code("TCE307", IHERADTF, "Vascular and Interventional")
CATEGORY_NUCLEAR = _code("TCE308", IHERADTF, "Nuclear")
CATEGORY_ULTRASOUND = _code("TCE309", IHERADTF, "Ultrasound")
CATEGORY_PEDIATRIC = _code("TCE310", IHERADTF, "Pediatric")
CATEGORY_BREAST = _code("TCE311", IHERADTF, "Breast")

DCM_CATEGORY_MUSCULOSKELETAL = _code("128728", DCM, "Musculoskeletal imaging subject matter")
DCM_CATEGORY_PULMONARY = _code("128729", DCM, "Pulmonary imaging subject matter")
DCM_CATEGORY_CARDIOVASCULAR = _code("128730", DCM, "Cardiovascular imaging subject matter")
DCM_CATEGORY_GASTROINTESTINAL = _code("128731", DCM, "Gastrointestinal imaging subject matter")
DCM_CATEGORY_GENITOURINARY = _code("128732", DCM, "Genitourinary imaging subject matter")
DCM_CATEGORY_NEURO = _code("128733", DCM, "Neuroimaging subject matter")
DCM_CATEGORY_VASCULAR_INTERVENTIONAL = _code(
    "128734", DCM, "Vascular and interventional imaging subject matter"
)
DCM_CATEGORY_NUCLEAR = _code("128735", DCM, "Nuclear medicine imaging subject matter")
DCM_CATEGORY_ULTRASOUND = _code("128736", DCM, "Ultrasound imaging subject matter")
DCM_CATEGORY_PEDIATRIC = _code("128737", DCM, "Pediatric imaging subject matter")
DCM_CATEGORY_BREAST = _code("128738", DCM, "Breast imaging subject matter")

# --- Level of difficulty (TCE110 values; CID 7016 for the DCM family) ---------------------

LEVEL_PRIMARY = _code("TCE201", IHERADTF, "Primary")
LEVEL_INTERMEDIATE = _code("TCE202", IHERADTF, "Intermediate")
LEVEL_ADVANCED = _code("TCE203", IHERADTF, "Advanced")

DCM_LEVEL_PRIMARY = _code("128725", DCM, "Primary level")
DCM_LEVEL_INTERMEDIATE = _code("128726", DCM, "Intermediate level")
DCM_LEVEL_ADVANCED = _code("128727", DCM, "Advanced level")

# --- Yes / No (CID 230), for "Diagnosis confirmed" ----------------------------------------

YES = _code("373066001", SCT, "Yes")
NO = _code("373067005", SCT, "No")
SRT_YES = _code("R-0038D", SRT, "Yes")
SRT_NO = _code("R-00339", SRT, "No")


# --- Tables -------------------------------------------------------------------------------


def key(code: CodedConcept) -> CodeKey:
    """The lookup key of a code: ``(scheme designator, code value)``, normalised."""
    return _normalise(code.scheme_designator, code.value)


def _normalise(scheme: str, value: str) -> CodeKey:
    return (scheme.strip().upper(), value.strip().upper())


_TITLES: tuple[tuple[Purpose, CodedConcept, tuple[CodedConcept, ...]], ...] = (
    ("teaching", FOR_TEACHING_FILE_EXPORT, (DCM_FOR_TEACHING_FILE_EXPORT, DCM_FOR_TEACHING)),
    ("clinical_trial", FOR_CLINICAL_TRIAL_EXPORT, (DCM_FOR_CLINICAL_TRIAL_EXPORT,)),
    ("research", FOR_RESEARCH_COLLECTION_EXPORT, (DCM_FOR_RESEARCH_COLLECTION_EXPORT,)),
    ("publication", FOR_PUBLICATION_EXPORT, (DCM_FOR_PUBLICATION_EXPORT,)),
)

PURPOSE_OF_TITLE: Mapping[CodeKey, Purpose] = MappingProxyType(
    {key(code): purpose for purpose, written, others in _TITLES for code in (written, *others)}
)
"""Every accepted manifest title (both families and 113004) to its export purpose."""

TITLE_OF_PURPOSE: Mapping[str, CodedConcept] = MappingProxyType(
    {purpose: written for purpose, written, _ in _TITLES}
)
"""The title Casebank writes for each purpose: always IHERADTF, so MIRC/CTP understand it."""

_DELAYS: tuple[CodedConcept, ...] = (
    DELAY_FINAL_REPORT, DELAY_CLINICAL_INFORMATION, DELAY_CONFIRMATION_OF_DIAGNOSIS,
    DELAY_HISTOPATHOLOGY, DELAY_OTHER_LABORATORY_RESULTS, DELAY_PATIENT_DISCHARGED,
    DELAY_PATIENT_DIES, DELAY_EXPERT_REVIEW,
    DCM_DELAY_FINAL_REPORT, DCM_DELAY_CLINICAL_INFORMATION, DCM_DELAY_CONFIRMATION_OF_DIAGNOSIS,
    DCM_DELAY_HISTOPATHOLOGY, DCM_DELAY_OTHER_LABORATORY_RESULTS, DCM_DELAY_PATIENT_DISCHARGED,
    DCM_DELAY_PATIENT_DIES, DCM_DELAY_EXPERT_REVIEW,
)

DELAY_REASONS: Mapping[CodeKey, str] = MappingProxyType(
    {key(code): code.meaning for code in _DELAYS}
)
"""Delay reason code (either family) to its meaning in that family."""

DELAY_REASON_CODES: Mapping[CodeKey, CodedConcept] = MappingProxyType(
    {key(code): code for code in _DELAYS}
)
"""Delay reason code (either family) to the concept itself, for writing."""

ATFI_TITLES: Mapping[CodeKey, CodedConcept] = MappingProxyType(
    {
        key(code): code
        for code in (ADDITIONAL_TEACHING_FILE_INFORMATION, DCM_ADDITIONAL_TEACHING_FILE_INFORMATION)
    }
)
"""Root concept names that make an SR an ATFI document."""

_CATEGORIES: tuple[tuple[CodedConcept, CodedConcept], ...] = (
    (CATEGORY_MUSCULOSKELETAL, DCM_CATEGORY_MUSCULOSKELETAL),
    (CATEGORY_PULMONARY, DCM_CATEGORY_PULMONARY),
    (CATEGORY_CARDIOVASCULAR, DCM_CATEGORY_CARDIOVASCULAR),
    (CATEGORY_GASTROINTESTINAL, DCM_CATEGORY_GASTROINTESTINAL),
    (CATEGORY_GENITOURINARY, DCM_CATEGORY_GENITOURINARY),
    (CATEGORY_NEURO, DCM_CATEGORY_NEURO),
    (CATEGORY_VASCULAR_INTERVENTIONAL, DCM_CATEGORY_VASCULAR_INTERVENTIONAL),
    (CATEGORY_NUCLEAR, DCM_CATEGORY_NUCLEAR),
    (CATEGORY_ULTRASOUND, DCM_CATEGORY_ULTRASOUND),
    (CATEGORY_PEDIATRIC, DCM_CATEGORY_PEDIATRIC),
    (CATEGORY_BREAST, DCM_CATEGORY_BREAST),
)

_LEVELS: tuple[tuple[CodedConcept, CodedConcept], ...] = (
    (LEVEL_PRIMARY, DCM_LEVEL_PRIMARY),
    (LEVEL_INTERMEDIATE, DCM_LEVEL_INTERMEDIATE),
    (LEVEL_ADVANCED, DCM_LEVEL_ADVANCED),
)

CATEGORIES: Mapping[CodeKey, CodedConcept] = MappingProxyType(
    {key(code): written for written, dcm in _CATEGORIES for code in (written, dcm)}
)
"""Category code (either family) to the IHERADTF concept; its meaning is the short name."""

LEVELS: Mapping[CodeKey, CodedConcept] = MappingProxyType(
    {key(code): written for written, dcm in _LEVELS for code in (written, dcm)}
)
"""Level code (either family) to the IHERADTF concept; its meaning is the short name."""

YES_NO: Mapping[CodeKey, bool] = MappingProxyType(
    {key(YES): True, key(NO): False, key(SRT_YES): True, key(SRT_NO): False}
)
"""Yes/No codes, current SCT and legacy SRT, to their answer (by code value)."""

YES_NO_WORDS: Mapping[str, bool] = MappingProxyType(
    {YES.meaning.lower(): True, NO.meaning.lower(): False}
)
"""Lower-cased code meanings (or free text) that state an answer outright."""


# --- Searching tables ---------------------------------------------------------------------

T = TypeVar("T")


def lookup(table: Mapping[CodeKey, T], scheme: str, value: str) -> T | None:
    """Find a code in a table, tolerant of wrong or unusual scheme designators.

    An exact ``(scheme, value)`` match wins. Otherwise the code value alone decides, provided
    every entry with that value agrees; if they disagree the value is ambiguous and the scheme
    was needed, so nothing is returned.
    """
    exact = _normalise(scheme, value)
    if exact in table:
        return table[exact]
    candidates = [found for (_, v), found in table.items() if v == exact[1]]
    if candidates and all(found == candidates[0] for found in candidates):
        return candidates[0]
    return None


def matches(code: CodeRef | None, concept: CodedConcept) -> bool:
    """Whether a received code is ``concept``; the code value decides, as in :func:`lookup`."""
    if code is None:
        return False
    return lookup({key(concept): True}, code.scheme, code.value) is True


_MEANINGS: Mapping[CodeKey, str] = MappingProxyType(
    {key(code): code.meaning for pair in (*_CATEGORIES, *_LEVELS) for code in pair}
)


def concept_by_name(table: Mapping[CodeKey, CodedConcept], text: str) -> CodedConcept | None:
    """Find a category or level from free text: a code value or a meaning in either family."""
    wanted = text.strip().lower()
    if not wanted:
        return None
    for code_key, written in table.items():
        if wanted in (code_key[1].lower(), _MEANINGS.get(code_key, "").lower()):
            return written
    return None


# --- Reading codes from datasets ----------------------------------------------------------


class CodeRef(NamedTuple):
    """A code exactly as it was received, tolerant of missing attributes."""

    scheme: str
    value: str
    meaning: str


def read_code(item: Dataset) -> CodeRef:
    """The code of one item of a code sequence (Code Value, Long or URN Code Value)."""
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue") or ""
    return CodeRef(
        scheme=str(item.get("CodingSchemeDesignator", "") or "").strip(),
        value=str(value).strip(),
        meaning=str(item.get("CodeMeaning", "") or "").strip(),
    )


def first_code(ds: Dataset, keyword: str) -> CodeRef | None:
    """The first code of a code sequence attribute, or None if absent or empty."""
    sequence = ds.get(keyword)
    if not sequence:
        return None
    return read_code(sequence[0])


def concept_name(item: Dataset) -> CodeRef | None:
    """The concept name of a content item (or of a document root), or None if unnamed."""
    return first_code(item, "ConceptNameCodeSequence")


def walk_content(
    node: Dataset, ancestors: tuple[CodeRef, ...] = ()
) -> Iterator[tuple[Dataset, tuple[CodeRef, ...]]]:
    """Every content item below ``node`` at any depth, each with its ancestors' concept names.

    Ancestors run from the outermost item below ``node`` to the immediate parent; unnamed
    ancestors are left out. Vendors nest ATFI items in sub-containers or under the item they
    qualify, so readers must not stop at the root's children.
    """
    for item in node.get("ContentSequence") or ():
        yield item, ancestors
        name = concept_name(item)
        yield from walk_content(item, ancestors if name is None else (*ancestors, name))
