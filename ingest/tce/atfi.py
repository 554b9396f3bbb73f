"""The TCE "Additional Teaching File Information" (ATFI) structured report (IHE RAD-52).

The ATFI carries what the radiologist typed when flagging a case: author, history, findings,
diagnosis, category, level and so on. Writers disagree on nearly everything, so
:func:`parse_teaching_file_info` reads the whole content tree at any depth, accepts either code
family, repeated and missing items, coded or free-text values, and the swapped Yes/No codes of
dcm4chee. :func:`build_teaching_file_info` writes the layout dcm4chee 2.x writes (one flat
container, IHERADTF names) with highdicom.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from highdicom.sr import (
    CodeContentItem,
    CodedConcept,
    ContainerContentItem,
    ContentItem,
    ContentSequence,
    EnhancedSR,
    RelationshipTypeValues,
    TextContentItem,
)
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    BasicTextSRStorage,
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    EnhancedSRStorage,
    generate_uid,
)

from archive.registration import parse_registration, split_trailing_registration

from . import codes
from .manifest import evidence_for_highdicom

SR_SOP_CLASSES: frozenset[str] = frozenset(
    {BasicTextSRStorage, EnhancedSRStorage, ComprehensiveSRStorage, Comprehensive3DSRStorage}
)
"""SR storage classes an ATFI may arrive in (dcm4chee writes Basic Text; CTP accepts any)."""


@dataclass(frozen=True)
class TeachingFileInfo:
    """The teaching-file information of one case, as the ATFI SR states it.

    Attributes
    ----------
    author_name : str
        Author's name; several authors are joined with ``"; "``.
    author_gmc : str
        The author's GMC number: the fifth (suffix) component of a person-name formatted
        Author, ``Family^Given^Middle^Prefix^GMC``, else a trailing ``GMC 1234567`` in the text.
    affiliation, contact : str
        Author's affiliation and contact details.
    abstract : str
        Short summary; becomes the case title.
    keywords : tuple[str, ...]
        Keywords, split on ``|``, ``;`` and ``,``.
    history, findings, discussion, differential, diagnosis : str
        Narrative sections; repeated items are joined with newlines.
    diagnosis_confirmed : bool or None
        Whether the diagnosis is confirmed; None when not stated.
    organ_system, pathology, anatomy, modality : str
        Descriptive labels.
    category : str
        Category of teaching material by its short name, e.g. ``"Pulmonary"``.
    level : str
        Level of difficulty by its short name, e.g. ``"Advanced"``.
    codes : tuple[tuple[str, str, str], ...]
        Coded diagnoses as ``(coding scheme, code value, meaning)``: every CODE item named
        Diagnosis, Finding, Differential Diagnosis or Pathology, or nested under such an item.
    """

    author_name: str = ""
    author_gmc: str = ""
    affiliation: str = ""
    contact: str = ""
    abstract: str = ""
    keywords: tuple[str, ...] = ()
    history: str = ""
    findings: str = ""
    discussion: str = ""
    differential: str = ""
    diagnosis: str = ""
    diagnosis_confirmed: bool | None = None
    organ_system: str = ""
    pathology: str = ""
    anatomy: str = ""
    modality: str = ""
    category: str = ""
    level: str = ""
    codes: tuple[tuple[str, str, str], ...] = ()


class NotTeachingFileInfo(ValueError):
    """The object is not an ATFI SR; the message names the object and the reason."""


# Concept name of each field, in the order dcm4chee writes them. DCM aliases are read only.
_CONCEPT_OF_FIELD: tuple[tuple[str, codes.CodedConcept], ...] = (
    ("author", codes.AUTHOR),
    ("affiliation", codes.AFFILIATION),
    ("contact", codes.CONTACT),
    ("abstract", codes.ABSTRACT),
    ("keywords", codes.KEYWORDS),
    ("history", codes.HISTORY),
    ("findings", codes.FINDING),
    ("discussion", codes.DISCUSSION),
    ("differential", codes.DIFFERENTIAL_DIAGNOSIS),
    ("diagnosis", codes.DIAGNOSIS),
    ("anatomy", codes.RADIOGRAPHIC_ANATOMY),
    ("pathology", codes.PATHOLOGY),
    ("organ_system", codes.ORGAN_SYSTEM),
    ("modality", codes.MODALITY),
    ("category", codes.CATEGORY),
    ("level", codes.LEVEL),
    ("diagnosis_confirmed", codes.DIAGNOSIS_CONFIRMED),
)
_ALIASES: tuple[tuple[str, codes.CodedConcept], ...] = (
    ("category", codes.DCM_TEACHING_FILE_CATEGORY),
    ("level", codes.DCM_LEVEL_OF_DIFFICULTY),
)
_FIELD_OF_CONCEPT: Mapping[codes.CodeKey, str] = MappingProxyType(
    {codes.key(concept): name for name, concept in (*_CONCEPT_OF_FIELD, *_ALIASES)}
)
_DIAGNOSTIC_FIELDS = frozenset({"diagnosis", "findings", "differential", "pathology"})
_NARRATIVE_FIELDS = (
    "affiliation", "contact", "abstract", "history", "findings", "discussion", "differential",
    "diagnosis", "organ_system", "pathology", "anatomy", "modality",
)
_KEYWORD_SEPARATORS = re.compile(r"[|;,]")
# --- Recognising --------------------------------------------------------------------------


def is_teaching_file_info(ds: Dataset) -> bool:
    """Whether ``ds`` is an SR (Basic Text, Enhanced, Comprehensive or 3D) titled TCE006/128712."""
    try:
        _check_atfi(ds)
    except NotTeachingFileInfo:
        return False
    return True


AUTHORSHIP_FIELDS = frozenset({"author", "affiliation", "contact"})


def withhold_authorship(ds: Dataset) -> int:
    """Remove the Author, Affiliation and Contact items from an ATFI report, at any depth; returns
    how many went. A research export is filed by its project, not by its author, and staff names
    and registration numbers are identifying too (PS3.15 removes operators' and physicians' names)."""
    removed = 0
    content = ds.get("ContentSequence")
    if not content:
        return 0
    kept = []
    for item in content:
        if _field_of(codes.concept_name(item)) in AUTHORSHIP_FIELDS:
            removed += 1
            continue
        removed += withhold_authorship(item)
        kept.append(item)
    if removed:
        ds.ContentSequence = kept
    return removed


def _label(ds: Dataset) -> str:
    return f"object {ds.get('SOPInstanceUID', '(no SOP Instance UID)')}"


def _check_atfi(ds: Dataset) -> None:
    sop_class = ds.get("SOPClassUID")
    if sop_class is None:
        raise NotTeachingFileInfo(f"{_label(ds)} has no SOP Class UID (0008,0016)")
    if str(sop_class) not in SR_SOP_CLASSES:
        raise NotTeachingFileInfo(
            f"{_label(ds)} is {UID(str(sop_class)).name} ({sop_class}), not a structured report"
        )
    title = codes.concept_name(ds)
    if title is None:
        raise NotTeachingFileInfo(
            f"{_label(ds)} is an SR without a document title: "
            "Concept Name Code Sequence (0040,A043) is missing or empty"
        )
    if codes.lookup(codes.ATFI_TITLES, title.scheme, title.value) is None:
        raise NotTeachingFileInfo(
            f"{_label(ds)} is titled ({title.value}, {title.scheme}, {title.meaning!r}), not "
            "Additional Teaching File Information (TCE006, IHERADTF) or (128712, DCM)"
        )


# --- Reading ------------------------------------------------------------------------------


@dataclass
class _Gathered:
    """Everything the content tree holds, per field, before it is reduced to values."""

    texts: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    coded: defaultdict[str, list[codes.CodeRef]] = field(default_factory=lambda: defaultdict(list))
    diagnoses: dict[tuple[str, str], codes.CodeRef] = field(default_factory=dict)


def parse_teaching_file_info(ds: Dataset) -> TeachingFileInfo:
    """Read an ATFI SR, tolerant of every layout seen from TCE writers.

    Raises
    ------
    NotTeachingFileInfo
        If ``ds`` is not an SR titled Additional Teaching File Information.
    """
    _check_atfi(ds)
    gathered = _gather(ds)
    author_name, author_gmc = _authors(gathered.texts["author"])
    narrative = {name: _text(gathered, name) for name in _NARRATIVE_FIELDS}
    return TeachingFileInfo(
        author_name=author_name,
        author_gmc=author_gmc,
        keywords=_keywords(gathered),
        diagnosis_confirmed=_confirmed(gathered),
        category=_choice(gathered, "category", codes.CATEGORIES),
        level=_choice(gathered, "level", codes.LEVELS),
        codes=tuple((c.scheme, c.value, c.meaning) for c in gathered.diagnoses.values()),
        **narrative,
    )


def _field_of(name: codes.CodeRef | None) -> str | None:
    if name is None:
        return None
    return codes.lookup(_FIELD_OF_CONCEPT, name.scheme, name.value)


def _gather(ds: Dataset) -> _Gathered:
    gathered = _Gathered()
    for item, ancestors in codes.walk_content(ds):
        name = _field_of(codes.concept_name(item))
        value_type = item.get("ValueType")
        if value_type == "CODE":
            code = codes.first_code(item, "ConceptCodeSequence")
            if code is None:
                continue
            if name is not None:
                gathered.coded[name].append(code)
            if _is_diagnostic(name, ancestors):
                gathered.diagnoses.setdefault((code.scheme, code.value), code)
        elif value_type in ("TEXT", "PNAME") and name is not None:
            text = str(item.get("TextValue") or item.get("PersonName") or "").strip()
            if text:
                gathered.texts[name].append(text)
    return gathered


def _is_diagnostic(name: str | None, ancestors: tuple[codes.CodeRef, ...]) -> bool:
    return name in _DIAGNOSTIC_FIELDS or any(
        _field_of(ancestor) in _DIAGNOSTIC_FIELDS for ancestor in ancestors
    )


def _text(gathered: _Gathered, name: str) -> str:
    """Free text of a field; coded values stand in only when there is no text at all."""
    if gathered.texts[name]:
        return "\n".join(gathered.texts[name])
    return "\n".join(_coded_text(name, code) for code in gathered.coded[name])


def _coded_text(name: str, code: codes.CodeRef) -> str:
    # A coded modality (CID 29) has the modality abbreviation as its value, e.g. "CT".
    if name == "modality" and code.scheme.upper() == codes.DCM:
        return code.value
    return code.meaning or code.value


def _keywords(gathered: _Gathered) -> tuple[str, ...]:
    raw = gathered.texts["keywords"] + [c.meaning for c in gathered.coded["keywords"]]
    parts = (part.strip() for text in raw for part in _KEYWORD_SEPARATORS.split(text))
    return tuple(part for part in parts if part)


def _choice(
    gathered: _Gathered, name: str, table: Mapping[codes.CodeKey, codes.CodedConcept]
) -> str:
    """Category or level by its short name, whether it came coded or as text."""
    for code in gathered.coded[name]:
        known = codes.lookup(table, code.scheme, code.value)
        return known.meaning if known is not None else code.meaning or code.value
    for text in gathered.texts[name]:
        known = codes.concept_by_name(table, text)
        return known.meaning if known is not None else text
    return ""


def _confirmed(gathered: _Gathered) -> bool | None:
    for code in gathered.coded["diagnosis_confirmed"]:
        answer = _answer(code)
        if answer is not None:
            return answer
    for text in gathered.texts["diagnosis_confirmed"]:
        answer = codes.YES_NO_WORDS.get(text.lower())
        if answer is not None:
            return answer
    return None


def _answer(code: codes.CodeRef) -> bool | None:
    """Yes or No; the meaning decides when it says so, because dcm4chee 2.x writes
    (R-00339, SRT, "Yes"). dcm4chee-web3 swaps designator and value, so both are tried."""
    by_meaning = codes.YES_NO_WORDS.get(code.meaning.lower())
    if by_meaning is not None:
        return by_meaning
    by_value = codes.lookup(codes.YES_NO, code.scheme, code.value)
    if by_value is None:
        by_value = codes.lookup(codes.YES_NO, code.value, code.scheme)
    return by_value


def _authors(texts: list[str]) -> tuple[str, str]:
    names: list[str] = []
    gmc = ""
    for text in texts:
        name, number = _split_author(text)
        if name:
            names.append(name)
        gmc = gmc or number
    return "; ".join(names), gmc


def _split_author(text: str) -> tuple[str, str]:
    """Name and registration number (canonical, see `archive.registration`) of one Author value.

    A person name carries the number as its fifth component (``Smith^Jane^^^GMC7123456`` in the
    RCR template, or the bare digits); free text may end with one (``Dr Jane Smith GMC 1234567``).
    """
    name = text.strip()
    if "^" in name:
        components = name.split("=")[0].split("^")  # the alphabetic group of a PN
        name = "^".join(components[:4]).rstrip("^").strip()
        suffix = components[4].strip() if len(components) > 4 else ""
        if suffix:
            found = parse_registration(suffix) or split_trailing_registration(suffix)[1]
            return name, found.canonical if found else ""
    rest, found = split_trailing_registration(name)
    return (rest, found.canonical) if found else (name, "")


# --- Writing ------------------------------------------------------------------------------


def teaching_file_info_content(info: TeachingFileInfo) -> ContainerContentItem:
    """The ATFI content tree: a root container (TCE006) holding one item per stated field.

    Raises
    ------
    ValueError
        If nothing is stated, or the category or level is not a known one.
    """
    items = list(_content_items(info))
    if not items:
        raise ValueError("the teaching file information states nothing; there is no ATFI to write")
    root = ContainerContentItem(
        name=codes.ADDITIONAL_TEACHING_FILE_INFORMATION, is_content_continuous=False
    )
    root.ContentSequence = ContentSequence(items)
    return root


def _content_items(info: TeachingFileInfo) -> Iterator[ContentItem]:
    author = _author_text(info.author_name, info.author_gmc)
    if author:
        yield _text_item(codes.AUTHOR, author)
    for name, concept in _CONCEPT_OF_FIELD:
        if name in _NARRATIVE_FIELDS and getattr(info, name):
            yield _text_item(concept, getattr(info, name))
        elif name == "keywords":
            # dcm4chee writes one TEXT item per keyword.
            yield from (_text_item(concept, word) for word in info.keywords if word.strip())
    if info.category:
        yield _code_item(codes.CATEGORY, _known(codes.CATEGORIES, info.category, "category"))
    if info.level:
        yield _code_item(codes.LEVEL, _known(codes.LEVELS, info.level, "level"))
    if info.diagnosis_confirmed is not None:
        answer = codes.YES if info.diagnosis_confirmed else codes.NO
        yield _code_item(codes.DIAGNOSIS_CONFIRMED, answer)
    for system, value, display in info.codes:
        coded = CodedConcept(value=value, scheme_designator=system, meaning=display)
        yield _code_item(codes.DIAGNOSIS, coded)


def _author_text(name: str, gmc: str) -> str:
    """The Author value: the name, or a person name with the GMC number as its fifth part."""
    if not gmc:
        return name
    components = name.split("^")
    if len(components) > 4:
        raise ValueError(
            f"author {name!r} already has a fifth person-name component; "
            "the GMC number cannot be added"
        )
    return "^".join(components + [""] * (4 - len(components)) + [gmc])


def _known(table: Mapping[codes.CodeKey, codes.CodedConcept], text: str, what: str) -> CodedConcept:
    concept = codes.concept_by_name(table, text)
    if concept is None:
        known = ", ".join(dict.fromkeys(c.meaning for c in table.values()))
        raise ValueError(f"unknown {what} {text!r}; expected one of {known}")
    return concept


def _text_item(name: CodedConcept, value: str) -> TextContentItem:
    return TextContentItem(
        name=name, value=value, relationship_type=RelationshipTypeValues.CONTAINS
    )


def _code_item(name: CodedConcept, value: CodedConcept) -> CodeContentItem:
    return CodeContentItem(
        name=name, value=value, relationship_type=RelationshipTypeValues.CONTAINS
    )


def build_teaching_file_info(
    info: TeachingFileInfo,
    evidence: Sequence[Dataset],
    *,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Dataset:
    """Write an ATFI SR for the case whose instances are ``evidence``.

    highdicom offers no Basic Text SR class (the class dcm4chee writes), so this is an Enhanced
    SR; its content uses only value types Basic Text SR allows, and receivers (CTP, Casebank)
    accept any SR class with a TCE006 root.

    Parameters
    ----------
    info : TeachingFileInfo
        What to state; empty fields are left out.
    evidence : Sequence[pydicom.dataset.Dataset]
        The case's instances; patient and study attributes are copied from the first, and all
        are listed as evidence.
    series_instance_uid, sop_instance_uid : str or None
        New UIDs are generated when not given.

    Returns
    -------
    pydicom.dataset.Dataset
        A :class:`highdicom.sr.EnhancedSR`.

    Raises
    ------
    ValueError
        If there is no evidence, nothing to state, or an unknown category or level.
    """
    if not evidence:
        raise ValueError("an ATFI belongs to a case; evidence is empty")
    return EnhancedSR(
        evidence=evidence_for_highdicom(evidence),
        content=teaching_file_info_content(info),
        series_instance_uid=series_instance_uid or generate_uid(),
        series_number=1,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=1,
        is_complete=True,
        is_final=True,
    )
