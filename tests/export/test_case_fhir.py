"""FHIR for one teaching case: ImagingStudy, DiagnosticReport (the teaching text) and a Bundle,
validated with fhir.resources, with the case's view right, and carrying no identifier."""

from __future__ import annotations

import json

import pytest
from fhir.resources.bundle import Bundle
from fhir.resources.diagnosticreport import DiagnosticReport
from fhir.resources.imagingstudy import ImagingStudy
from sqlalchemy import select

from archive.models import Case, Study, User

from ..archive.test_quizzes import LIVER, two_cases  # noqa: F401 (fixture)
from ..conftest import login

pytestmark = pytest.mark.peers


def test_a_case_as_fhir_validates_and_names_no_one(casebank, two_cases, client):  # noqa: F811
    liver, _ = two_cases
    with casebank.database.session() as session:
        study_id = session.scalars(select(Study.id).where(Study.case_id == liver)).one()
        case = session.get_one(Case, liver)
        alice = session.scalars(select(User).where(User.username == "alice")).one()
        never = {case.author_name, case.author_gmc, alice.display_name, alice.gmc, alice.email, "Jones", "7000001"}
    never.discard("")
    login(client, "bob")  # may view alice's folder
    answers = {path: client.get(path) for path in (f"/fhir/ImagingStudy/{study_id}", f"/fhir/DiagnosticReport/{liver}",
                                                   f"/fhir/Bundle/case-{liver}")}
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/fhir+json")
        for name in never:
            assert name not in answer.text, (path, name)
    ImagingStudy.model_validate_json(answers[f"/fhir/ImagingStudy/{study_id}"].text)
    report = DiagnosticReport.model_validate_json(answers[f"/fhir/DiagnosticReport/{liver}"].text)
    assert report.conclusion == LIVER["diagnosis"] and report.conclusionCode[0].coding[0].code == "C22.0"
    text = report.presentedForm[0].data.decode()  # fhir.resources decodes base64Binary
    assert LIVER["history"] in text and LIVER["discussion"] in text and "Findings of" in text
    assert report.performer is None and report.resultsInterpreter is None
    for name in never:
        assert name not in text
    bundle = Bundle.model_validate_json(answers[f"/fhir/Bundle/case-{liver}"].text)
    kinds = sorted(e.resource.__resource_type__ for e in bundle.entry)
    assert kinds == ["Condition", "DiagnosticReport", "ImagingStudy", "Patient"]
    patient = json.loads(next(e.resource for e in bundle.entry if e.resource.__resource_type__ == "Patient").model_dump_json(exclude_none=True))
    assert patient == {"resourceType": "Patient", "identifier": [{"system": "urn:casebank:case-pseudonym", "value": f"case-{liver}"}]}

    login(client, "carol")  # sees nothing of alice's: each is the 404 of a missing resource
    for path in answers:
        assert client.get(path).status_code == 404, path
    assert client.get("/fhir/DiagnosticReport/999999").status_code == 404
