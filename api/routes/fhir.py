"""FHIR R5 for one archived study: ``GET /fhir/ImagingStudy/{id}``, with the case's view right.

The subject is referred to by its pseudonym only (the Clinical Trial Subject ID, or ``case-<id>``);
anyone who may not view the case gets the same 404 as for a study that does not exist."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from archive import cases
from archive.cohorts import entry_of
from archive.errors import NotFound
from archive.models import Study
from export import fhir

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
