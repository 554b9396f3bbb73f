"""FHIR R5 for archived cases, with the case's view right: ``GET /fhir/ImagingStudy/{study id}``,
``GET /fhir/DiagnosticReport/{case id}`` (the teaching text) and ``GET /fhir/Bundle/case-{case id}``.

The subject is referred to by its pseudonym only (the Clinical Trial Subject ID, or ``case-<id>``);
anyone who may not view the case gets the same 404 as for a study that does not exist."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from fhir.resources.reference import Reference

from archive import cases
from archive.cohorts import entry_of
from archive.errors import NotFound
from archive.models import Study
from export import case_fhir, fhir

from ..deps import CasebankDep, CredentialsDep

router = APIRouter(tags=["fhir"])


@router.get("/fhir/ImagingStudy/{study_id}", responses={200: {"content": {fhir.FHIR_JSON: {}}}})
def read_imaging_study(study_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        user = credentials.user(session)
        study = session.get(Study, study_id)
        if study is None:
            raise NotFound(f"ImagingStudy {study_id} does not exist")
        try:
            case = cases.get_case(session, user, study.case_id)
        except NotFound:
            raise NotFound(f"ImagingStudy {study_id} does not exist") from None
        entry = entry_of(case)
        recorded = next(s for s in entry["studies"] if s["study_instance_uid"] == study.study_instance_uid)
        subject_id = str((study.trial or {}).get("subject_id") or "").strip()
        subject = fhir.subject_reference(subject_id or f"case-{case.id}", bool(subject_id))
        resource = fhir.imaging_study(recorded, subject, resource_id=str(study.id))
    return Response(fhir.to_json(resource), media_type=fhir.FHIR_JSON)


def _json(resource) -> Response:  # type: ignore[no-untyped-def]
    return Response(fhir.to_json(resource), media_type=fhir.FHIR_JSON)


def _case(session, user, case_id: int, resource: str):  # type: ignore[no-untyped-def]
    """The case, or the same NotFound for a missing case and one the user may not view."""
    try:
        return cases.get_case(session, user, case_id)
    except NotFound:
        raise NotFound(f"{resource} does not exist") from None


@router.get("/fhir/DiagnosticReport/{case_id}", responses={200: {"content": {fhir.FHIR_JSON: {}}}})
def read_diagnostic_report(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    """The case's teaching text as a DiagnosticReport: conclusion = diagnosis, coded conclusions,
    the text as Markdown in presentedForm; its studies referenced as ImagingStudy/{id}."""
    with cb.database.session() as session:
        case = _case(session, credentials.user(session), case_id, f"DiagnosticReport/{case_id}")
        name, from_trial = case_fhir.pseudonym(case)
        studies = [Reference(reference=f"ImagingStudy/{st.id}", type="ImagingStudy") for st in case.studies]
        return _json(case_fhir.diagnostic_report(case, fhir.subject_reference(name, from_trial), studies))


@router.get("/fhir/Bundle/case-{case_id}", responses={200: {"content": {fhir.FHIR_JSON: {}}}})
def read_case_bundle(case_id: int, cb: CasebankDep, credentials: CredentialsDep) -> Response:
    with cb.database.session() as session:
        return _json(case_fhir.case_bundle(_case(session, credentials.user(session), case_id, f"Bundle/case-{case_id}")))
