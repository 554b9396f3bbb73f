"""FHIR R5 for one teaching case: its ImagingStudy resources, a DiagnosticReport carrying the
teaching text, a Condition per coded diagnosis, and a collection Bundle of them with the subject.

The subject is a pseudonym only (the Clinical Trial Subject ID, or ``case-<id>``). The case's
author and GMC number, the sender and every DICOM identifier but the (already new) UIDs stay out:
the report names no performer or interpreter."""

from __future__ import annotations

import base64
from typing import Any

from fhir.resources.attachment import Attachment
from fhir.resources.codeableconcept import CodeableConcept
from fhir.resources.coding import Coding
from fhir.resources.diagnosticreport import DiagnosticReport
from fhir.resources.reference import Reference

from archive.cohorts import entry_of
from archive.models import Case

from . import fhir

LOINC = "http://loinc.org"
IMAGING_REPORT = Coding(system=LOINC, code="18748-4", display="Diagnostic imaging study")
RADIOLOGY = Coding(system="http://terminology.hl7.org/CodeSystem/v2-0074", code="RAD", display="Radiology")
SECTIONS = (("history", "Clinical history"), ("findings", "Findings"), ("differential", "Differential diagnosis"),
            ("discussion", "Discussion"))


def pseudonym(case: Case) -> tuple[str, bool]:
    for study in case.studies:
        subject = str((study.trial or {}).get("subject_id") or "").strip()
        if subject:
            return subject, True
    return f"case-{case.id}", False


def teaching_text(case: Case) -> str:
    """The case's teaching text as Markdown, headed by section."""
    parts = [f"# {case.title}"] if case.title else []
    for name, heading in SECTIONS:
        value = (getattr(case, name) or "").strip()
        if value:
            parts.append(f"## {heading}\n\n{value}")
    if case.keywords:
        parts.append("## Keywords\n\n" + ", ".join(case.keywords))
    return "\n\n".join(parts)


def _code(system: str, code: str, display: str) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=fhir.code_system_uri(system), code=code, display=display or None)],
                           text=display or None)


def diagnostic_report(case: Case, subject: Reference, studies: list[Reference]) -> DiagnosticReport:
    text = teaching_text(case)
    return DiagnosticReport(
        id=str(case.id),
        status="final",
        category=[CodeableConcept(coding=[RADIOLOGY])],
        code=CodeableConcept(coding=[IMAGING_REPORT], text=case.title or None),
        subject=subject,
        study=studies or None,
        conclusion=(case.diagnosis or "").strip() or None,
        conclusionCode=[_code(c.system, c.code, c.display) for c in case.codes] or None,
        presentedForm=[Attachment(contentType="text/markdown", language="en", title="Teaching text",
                                  data=base64.b64encode(text.encode()).decode())] if text else None,
    )


def imaging_studies(case: Case, subject: Reference) -> list[tuple[int, Any]]:
    """(Study.id, ImagingStudy) for every study of the case."""
    recorded = {s["study_instance_uid"]: s for s in entry_of(case)["studies"]}
    return [(st.id, fhir.imaging_study(recorded[st.study_instance_uid], subject, resource_id=str(st.id)))
            for st in case.studies]


def case_bundle(case: Case) -> Any:
    """A collection Bundle: the pseudonymous Patient, the ImagingStudies, the DiagnosticReport and
    a Condition per code (or one for a diagnosis given only as text)."""
    name, from_trial = pseudonym(case)
    base = ("case", case.id)
    patient_urn = fhir.stable_urn(*base, "patient", name)
    subject = fhir.subject_reference(name, from_trial, patient_urn)
    entries: list[tuple[str, Any]] = [(patient_urn, fhir.patient(name, from_trial))]
    study_urns = []
    for study_id, resource in imaging_studies(case, subject):
        urn = fhir.stable_urn(*base, "study", study_id)
        study_urns.append(urn)
        entries.append((urn, resource))
    report = diagnostic_report(case, subject, [Reference(reference=u, type="ImagingStudy") for u in study_urns])
    entries.append((fhir.stable_urn(*base, "report"), report))
    confirmed = str((case.teaching_extra or {}).get("diagnosis_confirmed") or "")
    for n, code in enumerate(case.codes):
        entries.append((fhir.stable_urn(*base, "condition", n),
                        fhir.condition(subject, (code.system, code.code, code.display or ""), evidence=study_urns,
                                       confirmed=confirmed)))
    if not case.codes and (case.diagnosis or "").strip():
        entries.append((fhir.stable_urn(*base, "condition", "text"),
                        fhir.condition(subject, None, case.diagnosis.strip(), study_urns, confirmed)))
    return fhir.collection(entries, fhir.stable_urn(*base, "bundle"), resource_id=f"case-{case.id}")
