"""The terminology REST routes and the FHIR operations, as a logged-in browser calls them."""

from __future__ import annotations

import pytest
from fhir.resources.parameters import Parameters
from fhir.resources.valueset import ValueSet

from ..conftest import login
from .rf2 import HCC, LIVER_MALIGNANCY, MALIGNANT, write_rf2_fixture


@pytest.fixture
def browser(client, make_user, casebank, tmp_path):
    casebank.terminology.load("SNOMED", write_rf2_fixture(tmp_path / "release"))
    make_user("ann")
    login(client, "ann")
    return client


def test_routes_need_a_logged_in_user(client):
    for url in ("/api/terminology/ICD10/suggest?q=liver", "/api/terminology/ICD10/C22.0",
                "/fhir/CodeSystem/$lookup?system=http://hl7.org/fhir/sid/icd-10&code=C22.0"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.headers["content-type"] == "application/problem+json"


def test_suggest(browser):
    response = browser.get("/api/terminology/I10/suggest", params={"q": "liver cell"})
    assert response.status_code == 200
    assert response.json() == [{"system": "ICD10", "code": "C22.0", "display": "Malignant neoplasm: Liver cell carcinoma"}]
    found = browser.get("/api/terminology/SCT/suggest", params={"q": "hepat", "limit": 1}).json()
    assert found == [{"system": "SNOMED", "code": HCC, "display": "Hepatocellular carcinoma"}]
    assert browser.get("/api/terminology/SNOMED/suggest", params={"q": ""}).status_code == 422


def test_concept_with_synonyms_parents_and_ancestors(browser):
    assert browser.get("/api/terminology/ICD10/c220").json() == {
        "system": "ICD10", "code": "C22.0", "display": "Malignant neoplasm: Liver cell carcinoma", "synonyms": [],
        "parents": ["C22"], "ancestors": ["C22", "C15-C26", "C00-C75", "C00-C97", "II"],
    }
    concept = browser.get(f"/api/terminology/snomed/{HCC}").json()
    assert concept["synonyms"] == ["Hepatoma", "Liver cell carcinoma"]
    assert concept["ancestors"] == [MALIGNANT, "64572001"]


def test_unknown_systems_and_codes_are_404_problems(browser):
    for url, detail in (
        ("/api/terminology/LOINC/1234-5", "unknown code system 'LOINC'"),
        ("/api/terminology/LOINC/suggest?q=x", "unknown code system 'LOINC'"),
        ("/api/terminology/ICD10/X99.9", "ICD10 has no code 'X99.9'"),
        ("/api/terminology/RADLEX/RID1", "RADLEX is not loaded"),
        ("/fhir/CodeSystem/$lookup?system=http://loinc.org&code=1", "unknown code system URI"),
        ("/fhir/CodeSystem/$lookup?system=http://snomed.info/sct&code=1", "SNOMED has no code '1'"),
        ("/fhir/ValueSet/$expand?url=http://snomed.info/sct?fhir_vs%3Disa/1", "SNOMED has no code '1'"),
    ):
        response = browser.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"
        assert detail in response.json()["detail"]


def test_fhir_lookup(browser):
    response = browser.get("/fhir/CodeSystem/$lookup", params={"system": "http://snomed.info/sct", "code": HCC})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    parameters = Parameters.model_validate_json(response.text)
    assert {p.name: p.valueString for p in parameters.parameter}["display"] == "Hepatocellular carcinoma"


def test_fhir_expand(browser):
    response = browser.get("/fhir/ValueSet/$expand", params={"url": f"http://snomed.info/sct?fhir_vs=isa/{MALIGNANT}", "filter": "liver"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    value_set = ValueSet.model_validate_json(response.text)
    assert [c.code for c in value_set.expansion.contains] == [HCC, LIVER_MALIGNANCY]
    assert value_set.url == f"http://snomed.info/sct?fhir_vs=isa/{MALIGNANT}"
    whole = browser.get("/fhir/ValueSet/$expand", params={"url": "http://hl7.org/fhir/sid/icd-10?fhir_vs", "count": 3}).json()
    assert len(whole["expansion"]["contains"]) == 3
