"""The TCE export manifest: a Key Object Selection Document naming the instances of one case.

An Export Manager sends the manifest (IHE RAD-53) with the de-identified instances it lists.
:func:`parse_manifest` reads manifests from any TCE actor, accepting titles and delay reasons in
both the IHERADTF and the DCM code family; :func:`build_manifest` writes one with highdicom, in
the IHERADTF family that MIRC/CTP and dcm4chee understand.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from highdicom.ko import KeyObjectSelection, KeyObjectSelectionDocument
from highdicom.sr import (
    CodeContentItem,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    RelationshipTypeValues,
)
from pydicom.dataset import Dataset
from pydicom.uid import UID, KeyObjectSelectionDocumentStorage, generate_uid

from . import codes

_REFERENCE_VALUE_TYPES = frozenset({"IMAGE", "COMPOSITE", "WAVEFORM"})
# Type 2 attributes highdicom reads unconditionally from the first evidence instance;
# de-identified instances often lack them altogether (PS3.15 action X instead of Z).
_READ_BY_HIGHDICOM = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
    "StudyDate", "StudyTime", "ReferringPhysicianName",
)
_PIXEL_DATA = 0x7FE00010


@dataclass(frozen=True)
class Reference:
    """One instance a manifest lists; the case is complete when all of them have arrived.

    Attributes
    ----------
    sop_class_uid : str
        Referenced SOP Class UID.
    sop_instance_uid : str
        Referenced SOP Instance UID.
    series_instance_uid : str
        Series of the instance; ``""`` when only the content tree named it.
    study_instance_uid : str
        Study of the instance.
    """

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str


@dataclass(frozen=True)
class Manifest:
    """What a received TCE manifest says.

    Attributes
    ----------
    sop_instance_uid : str
        SOP Instance UID of the manifest itself.
    study_instance_uid : str
        Study the manifest belongs to.
    purpose : str
        ``"teaching"``, ``"clinical_trial"``, ``"research"`` or ``"publication"``, from the title.
    title_code : tuple[str, str]
        The document title as received: (coding scheme designator, code value).
    description : str
        Key Object Description text, ``""`` if none.
    observer_name : str
        Person Observer Name (the user who selected the instances), ``""`` if none.
    delay_reason : str or None
        Meaning of the delay reason if a Document Title Modifier is present, else None.
    references : tuple[Reference, ...]
        The listed instances, never the manifest itself.
    """

    sop_instance_uid: str
    study_instance_uid: str
    purpose: str
    title_code: tuple[str, str]
    description: str
    observer_name: str
    delay_reason: str | None
    references: tuple[Reference, ...]


class NotAManifest(ValueError):
    """The object is not a TCE manifest; the message names the object and what is missing."""


# --- Reading ------------------------------------------------------------------------------


def is_manifest(ds: Dataset) -> bool:
    """Whether ``ds`` is a Key Object Selection Document with a TCE export title.

    Titles of either family are accepted (TCE001/2/7/8, 128710/1/3/4) and so is the general
    DICOM title (113004, DCM, "For Teaching").
    """
    try:
        _export_title(ds)
    except NotAManifest:
        return False
    return True


def parse_manifest(ds: Dataset) -> Manifest:
    """Read a TCE manifest.

    Raises
    ------
    NotAManifest
        If ``ds`` is not a KOS, has no TCE title, lacks its UIDs or references nothing.
    """
    title, purpose = _export_title(ds)
    sop_instance_uid = _required_uid(ds, "SOPInstanceUID", "SOP Instance UID (0008,0018)")
    study_instance_uid = _required_uid(ds, "StudyInstanceUID", "Study Instance UID (0020,000D)")
    references = _references(ds, sop_instance_uid, study_instance_uid)
    if not references:
        raise NotAManifest(
            f"manifest {sop_instance_uid} references no instances: neither Current Requested "
            "Procedure Evidence Sequence (0040,A375) nor the content tree lists any"
        )
    return Manifest(
        sop_instance_uid=sop_instance_uid,
        study_instance_uid=study_instance_uid,
        purpose=purpose,
        title_code=(title.scheme, title.value),
        description=_description(ds),
        observer_name=_observer_name(ds),
        delay_reason=_delay_reason(ds),
        references=references,
    )


def _label(ds: Dataset) -> str:
    return f"object {ds.get('SOPInstanceUID', '(no SOP Instance UID)')}"


def _export_title(ds: Dataset) -> tuple[codes.CodeRef, str]:
    sop_class = ds.get("SOPClassUID")
    if sop_class is None:
        raise NotAManifest(f"{_label(ds)} has no SOP Class UID (0008,0016)")
    if UID(str(sop_class)) != KeyObjectSelectionDocumentStorage:
        raise NotAManifest(
            f"{_label(ds)} is {UID(str(sop_class)).name} ({sop_class}), "
            f"not {KeyObjectSelectionDocumentStorage.name}"
        )
    title = codes.concept_name(ds)
    if title is None:
        raise NotAManifest(
            f"{_label(ds)} is a Key Object Selection Document without a document title: "
            "Concept Name Code Sequence (0040,A043) is missing or empty"
        )
    purpose = codes.lookup(codes.PURPOSE_OF_TITLE, title.scheme, title.value)
    if purpose is None:
        accepted = ", ".join(value for _, value in codes.PURPOSE_OF_TITLE)
        raise NotAManifest(
            f"{_label(ds)} is titled ({title.value}, {title.scheme}, {title.meaning!r}), "
            f"which is not a TCE export title (accepted: {accepted})"
        )
    return title, purpose


def _required_uid(ds: Dataset, keyword: str, name: str) -> str:
    value = str(ds.get(keyword, "") or "").strip()
    if not value:
        raise NotAManifest(f"{_label(ds)} is a TCE manifest without {name}")
    return value


def _references(ds: Dataset, own_uid: str, study_uid: str) -> tuple[Reference, ...]:
    found = list(_evidence_references(ds)) or list(_content_references(ds, study_uid))
    unique: dict[str, Reference] = {}
    for reference in found:
        if reference.sop_instance_uid != own_uid:
            unique.setdefault(reference.sop_instance_uid, reference)
    return tuple(unique.values())


def _evidence_references(ds: Dataset) -> Iterator[Reference]:
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or ():
        for series in study.get("ReferencedSeriesSequence") or ():
            for instance in series.get("ReferencedSOPSequence") or ():
                reference = _reference(
                    instance, str(series.get("SeriesInstanceUID", "")),
                    str(study.get("StudyInstanceUID", "")),
                )
                if reference is not None:
                    yield reference


def _content_references(ds: Dataset, study_uid: str) -> Iterator[Reference]:
    # A KOS references one study only, so the manifest's own study stands in; the series is
    # not recorded in the content tree.
    for item, _ in codes.walk_content(ds):
        if item.get("ValueType") in _REFERENCE_VALUE_TYPES:
            for instance in item.get("ReferencedSOPSequence") or ():
                reference = _reference(instance, "", study_uid)
                if reference is not None:
                    yield reference


def _reference(instance: Dataset, series_uid: str, study_uid: str) -> Reference | None:
    sop_instance_uid = str(instance.get("ReferencedSOPInstanceUID", "") or "").strip()
    if not sop_instance_uid:
        return None
    return Reference(
        sop_class_uid=str(instance.get("ReferencedSOPClassUID", "") or "").strip(),
        sop_instance_uid=sop_instance_uid,
        series_instance_uid=series_uid.strip(),
        study_instance_uid=study_uid.strip(),
    )


def _items_named(ds: Dataset, concept: codes.CodedConcept, value_type: str) -> Iterator[Dataset]:
    for item, _ in codes.walk_content(ds):
        if item.get("ValueType") == value_type and codes.matches(codes.concept_name(item), concept):
            yield item


def _description(ds: Dataset) -> str:
    texts = (
        str(item.get("TextValue", "") or "").strip()
        for item in _items_named(ds, codes.KEY_OBJECT_DESCRIPTION, "TEXT")
    )
    return "\n".join(text for text in texts if text)


def _observer_name(ds: Dataset) -> str:
    for item in _items_named(ds, codes.PERSON_OBSERVER_NAME, "PNAME"):
        name = str(item.get("PersonName", "") or "").strip().rstrip("^")
        if name:
            return name
    return ""


def _delay_reason(ds: Dataset) -> str | None:
    """The delay reason's meaning; an unknown modifier still delays, by its received meaning."""
    unknown: str | None = None
    for item in _items_named(ds, codes.DOCUMENT_TITLE_MODIFIER, "CODE"):
        reason = codes.first_code(item, "ConceptCodeSequence")
        if reason is None:
            continue
        meaning = codes.lookup(codes.DELAY_REASONS, reason.scheme, reason.value)
        if meaning is not None:
            return meaning
        unknown = unknown or reason.meaning or reason.value
    return unknown


# --- Writing ------------------------------------------------------------------------------


def build_manifest(
    evidence: Sequence[Dataset],
    *,
    purpose: str = "teaching",
    description: str = "",
    observer_name: str = "",
    delay_reason: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    institution_name: str | None = None,
) -> Dataset:
    """Write a TCE manifest listing every instance of ``evidence``.

    Parameters
    ----------
    evidence : Sequence[pydicom.dataset.Dataset]
        The selected instances, all of one study; patient and study attributes are copied from
        the first. Images become IMAGE items, anything else (an ATFI SR, say) COMPOSITE items.
    purpose : str
        ``"teaching"``, ``"clinical_trial"``, ``"research"`` or ``"publication"``; the
        IHERADTF title for it is written (TCE001, TCE002, TCE007, TCE008).
    description : str
        Key Object Description, left out if empty.
    observer_name : str
        The selecting user, as a DICOM person name; left out if empty.
    delay_reason : str or None
        Code value of a delay reason, e.g. ``"TCE014"`` (DCM values are accepted too).
    series_instance_uid, sop_instance_uid : str or None
        New UIDs are generated when not given.
    institution_name : str or None
        Written to Institution Name when given.

    Returns
    -------
    pydicom.dataset.Dataset
        A :class:`highdicom.ko.KeyObjectSelectionDocument`.

    Raises
    ------
    ValueError
        For no evidence, evidence from several studies, an unknown purpose or delay reason.
    """
    _check_evidence(evidence)
    evidence = evidence_for_highdicom(evidence)
    content = KeyObjectSelection(
        document_title=_title_for(purpose),
        referenced_objects=evidence,
        observer_person_context=_observer(observer_name),
        description=description or None,
    )
    root = content[0]
    # KOS roots are SEPARATE (MESA TCE templates); highdicom leaves the CONTAINER default.
    root.ContinuityOfContent = "SEPARATE"
    if delay_reason is not None:
        # highdicom has no parameter for TID 2010 row 2; it comes first among the children.
        root.ContentSequence.insert(0, _delay_modifier(delay_reason))
    document = KeyObjectSelectionDocument(
        evidence=evidence,
        content=content,
        series_instance_uid=series_instance_uid or generate_uid(),
        series_number=1,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=1,
        institution_name=institution_name,
    )
    document.copy_patient_and_study_information(evidence[0])
    return document


def _check_evidence(evidence: Sequence[Dataset]) -> None:
    if not evidence:
        raise ValueError("a manifest must reference at least one instance; evidence is empty")
    studies = {str(ds.StudyInstanceUID) for ds in evidence}
    if len(studies) > 1:
        raise ValueError(
            f"a manifest references one study, but the evidence spans {len(studies)}: "
            + ", ".join(sorted(studies))
        )


def evidence_for_highdicom(evidence: Sequence[Dataset]) -> list[Dataset]:
    """The evidence with its first instance made safe for highdicom's SOP class constructors.

    highdicom copies patient and study attributes from the first instance and fails if a Type 2
    one is absent, as it is after de-identification. The first instance is replaced by a copy
    (without pixel data) in which those attributes are present and empty; the caller's datasets
    are not changed.
    """
    first = Dataset()
    for element in evidence[0]:
        if element.tag != _PIXEL_DATA:
            first.add(copy.deepcopy(element))
    for keyword in _READ_BY_HIGHDICOM:
        if keyword not in first:
            setattr(first, keyword, None)
    return [first, *evidence[1:]]


def _title_for(purpose: str) -> codes.CodedConcept:
    title = codes.TITLE_OF_PURPOSE.get(purpose)
    if title is None:
        raise ValueError(
            f"unknown manifest purpose {purpose!r}; expected one of {', '.join(codes.PURPOSES)}"
        )
    return title


def _observer(observer_name: str) -> ObserverContext | None:
    if not observer_name:
        return None
    # A name without carets is a family name only; the trailing caret says so explicitly.
    name = observer_name if "^" in observer_name else f"{observer_name}^"
    return ObserverContext(
        observer_type=codes.PERSON,
        observer_identifying_attributes=PersonObserverIdentifyingAttributes(name=name),
    )


def _delay_modifier(delay_reason: str) -> CodeContentItem:
    reason = codes.lookup(codes.DELAY_REASON_CODES, codes.IHERADTF, delay_reason)
    if reason is None:
        known = ", ".join(value for _, value in codes.DELAY_REASON_CODES)
        raise ValueError(f"unknown delay reason {delay_reason!r}; expected one of {known}")
    return CodeContentItem(
        name=codes.DOCUMENT_TITLE_MODIFIER,
        value=reason,
        relationship_type=RelationshipTypeValues.HAS_CONCEPT_MOD,
    )
