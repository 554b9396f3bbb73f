"""FHIR R5 resources (fhir.resources' default modules) for what leaves the archive.

Patients carry only a pseudonym: the Clinical Trial Subject ID the edge wrote, or ``case-<id>``.
ImagingStudy follows the FHIR DICOM mapping: the Study Instance UID as an ``urn:oid:`` identifier
in system ``urn:dicom:uid``, modalities coded in DICOM (``DCM``), SOP Classes as ``urn:oid:`` URIs.
Resources inside a bundle refer to each other by ``urn:uuid:`` fullUrls, derived from the cohort
version and the archive's ids so the same version always gives the same UUIDs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from fhir.resources.bundle import Bundle, BundleEntry
from fhir.resources.codeableconcept import CodeableConcept
from fhir.resources.codeablereference import CodeableReference
from fhir.resources.coding import Coding
from fhir.resources.condition import Condition
from fhir.resources.group import Group, GroupMember
from fhir.resources.identifier import Identifier
from fhir.resources.imagingstudy import ImagingStudy, ImagingStudySeries, ImagingStudySeriesInstance
from fhir.resources.patient import Patient
from fhir.resources.reference import Reference

from terminology.fhir import SYSTEM_URIS
from terminology.systems import canonical_system

FHIR_JSON = "application/fhir+json"
DICOM_UID_SYSTEM = "urn:dicom:uid"
URI_SYSTEM = "urn:ietf:rfc:3986"
DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
SUBJECT_SYSTEM = "urn:casebank:clinical-trial-subject-id"  # the edge's pseudonym (0012,0040)
CASE_PSEUDONYM_SYSTEM = "urn:casebank:case-pseudonym"  # "case-<id>" when no subject ID was sent
COHORT_VERSION_SYSTEM = "urn:casebank:cohort-version"
LOCAL_CODE_SYSTEM = "urn:casebank:code-system:"  # + the system's name, for systems FHIR has no URI for
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_NAMESPACE = uuid.UUID("6f1c5a9e-4e0b-5b8f-9a57-3c2d1b0e7a11")  # Casebank's namespace for uuid5


def stable_urn(*parts: object) -> str:
    """A ``urn:uuid:`` that depends only on `parts`, so re-exporting a version gives the same bundle."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(map(str, parts)))}"


def code_system_uri(system: str) -> str:
    """The FHIR URI of a case code's system; a local URN for systems HL7 names no URI for."""
    name = canonical_system(system)
    return SYSTEM_URIS.get(name) or LOCAL_CODE_SYSTEM + (name or "UNKNOWN")


def pseudonym_identifier(pseudonym: str, from_trial: bool) -> Identifier:
    return Identifier(system=SUBJECT_SYSTEM if from_trial else CASE_PSEUDONYM_SYSTEM, value=pseudonym)


def patient(pseudonym: str, from_trial: bool) -> Patient:
    """A Patient that is nothing but its pseudonym: no name, birth date, sex or address."""
    return Patient(identifier=[pseudonym_identifier(pseudonym, from_trial)])


def subject_reference(pseudonym: str, from_trial: bool, urn: str | None = None) -> Reference:
    """A reference to the subject: to its bundle entry when there is one, else by identifier alone."""
    if urn:
        return Reference(reference=urn, type="Patient")
    return Reference(type="Patient", identifier=pseudonym_identifier(pseudonym, from_trial))


def fhir_date(dicom_date: str) -> str | None:
    """``YYYYMMDD`` as a FHIR date; None for anything else (absent or partial dates)."""
    text = (dicom_date or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return datetime.strptime(text, "%Y%m%d").date().isoformat()
    except ValueError:
        return None


def _modality(code: str) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=DCM_SYSTEM, code=(code or "OT").strip() or "OT")])


def imaging_study(study: dict[str, Any], subject: Reference, resource_id: str | None = None) -> ImagingStudy:
    """An ImagingStudy from a study as a cohort version records it (see ``archive.cohorts.entry_of``)."""
    series = [_series(se) for se in study.get("series", [])]
    modalities = sorted({(se.get("modality") or "OT").strip() or "OT" for se in study.get("series", [])})
    return ImagingStudy(
        id=resource_id,
        identifier=[Identifier(use="official", system=DICOM_UID_SYSTEM, value=f"urn:oid:{study['study_instance_uid']}")],
        status="available",
        subject=subject,
        started=fhir_date(study.get("study_date", "")),
        description=study.get("description") or None,
        modality=[_modality(m) for m in modalities] or None,
        numberOfSeries=len(series),
        numberOfInstances=sum(len(se.get("instances", [])) for se in study.get("series", [])),
        series=series or None,
    )


def _series(se: dict[str, Any]) -> ImagingStudySeries:
    instances = [
        ImagingStudySeriesInstance(uid=i[0], sopClass=Coding(system=URI_SYSTEM, code=f"urn:oid:{i[1]}"))
        for i in se.get("instances", [])
    ]
    return ImagingStudySeries(
        uid=se["series_instance_uid"],
        number=se.get("series_number"),
        modality=_modality(se.get("modality", "")),
        description=se.get("description") or None,
        numberOfInstances=len(instances),
        instance=instances or None,
    )


def condition(
    subject: Reference,
    code: tuple[str, str, str] | None,
    text: str = "",
    evidence: Sequence[str] = (),
    confirmed: str = "",
) -> Condition:
    """A diagnosis: coded (`code` = system, code, display) or, without a code, as text only.

    `evidence` are the fullUrls of the case's ImagingStudy entries; `confirmed` is the ATFI
    "diagnosis confirmed" answer ("yes"/"no"/""), mapped to confirmed/provisional."""
    if code is not None:
        system, value, display = code
        concept = CodeableConcept(coding=[Coding(system=code_system_uri(system), code=value, display=display or None)],
                                  text=display or None)
    else:
        concept = CodeableConcept(text=text)
    verification = {"yes": "confirmed", "no": "provisional"}.get(confirmed)
    return Condition(
        clinicalStatus=CodeableConcept(coding=[Coding(system=CONDITION_CLINICAL, code="active")]),
        verificationStatus=(CodeableConcept(coding=[Coding(system=CONDITION_VERIFICATION, code=verification)])
                            if verification else None),
        code=concept,
        subject=subject,
        evidence=[CodeableReference(reference=Reference(reference=url, type="ImagingStudy")) for url in evidence] or None,
    )


def group(name: str, members: Iterable[str], cohort_id: int, number: int) -> Group:
    """The cohort version as an enumerated Group of the Patients at `members` (fullUrls)."""
    entities = [GroupMember(entity=Reference(reference=urn, type="Patient")) for urn in members]
    return Group(
        identifier=[Identifier(system=COHORT_VERSION_SYSTEM, value=f"{cohort_id}/{number}")],
        type="person",
        membership="enumerated",
        name=name,
        quantity=len(entities),
        member=entities or None,
    )


def collection(
    entries: Sequence[tuple[str, Any]], identifier: str, at: datetime | None = None, resource_id: str | None = None,
) -> Bundle:
    """A ``collection`` Bundle of (fullUrl, resource) pairs."""
    return Bundle(
        id=resource_id,
        identifier=Identifier(system=URI_SYSTEM, value=identifier),
        type="collection",
        timestamp=(at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        entry=[BundleEntry(fullUrl=url, resource=resource) for url, resource in entries] or None,
    )


def to_json(resource: Any) -> str:
    """FHIR JSON: empty elements left out, as FHIR requires."""
    return resource.model_dump_json(exclude_none=True)
