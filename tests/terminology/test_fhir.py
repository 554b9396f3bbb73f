"""FHIR views: what $lookup and $expand return parses back as valid FHIR resources."""

from __future__ import annotations

import pytest
from fhir.resources.parameters import Parameters
from fhir.resources.valueset import ValueSet

from terminology import Concept, TerminologyError
from terminology.fhir import expand_valueset, lookup_parameters, parse_value_set_url, system_for_uri, system_uri

HCC = Concept("SNOMED", "25370001", "Hepatocellular carcinoma", ("Hepatoma", "Liver cell carcinoma"), ("363346000",))


def test_lookup_parameters_validate_and_carry_designations_and_parents():
    body = lookup_parameters(HCC)
    parameters = Parameters.model_validate(body)
    by_name: dict[str, list] = {}
    for parameter in parameters.parameter:
        by_name.setdefault(parameter.name, []).append(parameter)
    assert by_name["name"][0].valueString == "SNOMED CT"
    assert by_name["display"][0].valueString == "Hepatocellular carcinoma"
    assert [{p.name: p for p in d.part}["value"].valueString for d in by_name["designation"]] == [
        "Hepatoma", "Liver cell carcinoma",
    ]
    assert {p.name: p for p in by_name["designation"][0].part}["use"].valueCoding.code == "900000000000013009"
    [parent] = by_name["property"]
    assert [(p.name, p.valueCode) for p in parent.part] == [("code", "parent"), ("value", "363346000")]


def test_expand_valueset_validates_and_lists_the_concepts():
    body = expand_valueset("SNOMED", [HCC], "hepat")
    value_set = ValueSet.model_validate(body)
    assert value_set.url == "http://snomed.info/sct?fhir_vs" and value_set.status == "active"
    assert [(c.system, c.code, c.display) for c in value_set.expansion.contains] == [
        ("http://snomed.info/sct", "25370001", "Hepatocellular carcinoma"),
    ]
    assert value_set.expansion.parameter[0].name == "filter" and value_set.expansion.parameter[0].valueString == "hepat"
    empty = ValueSet.model_validate(expand_valueset("ICD10", [], "", url="http://hl7.org/fhir/sid/icd-10?fhir_vs=isa/II"))
    assert empty.expansion.contains is None and empty.url.endswith("isa/II")


def test_system_uris_and_implicit_value_set_urls():
    assert system_uri("I10") == "http://hl7.org/fhir/sid/icd-10"
    assert system_for_uri("http://www.radlex.org") == "RADLEX"
    assert system_for_uri(system_uri("ACR")) == "ACR"
    assert parse_value_set_url("http://snomed.info/sct?fhir_vs") == ("SNOMED", None)
    assert parse_value_set_url("http://snomed.info/sct?fhir_vs=isa/64572001") == ("SNOMED", "64572001")
    with pytest.raises(TerminologyError, match="unknown code system URI 'http://loinc.org'"):
        system_for_uri("http://loinc.org")
    with pytest.raises(TerminologyError, match="unsupported value set"):
        parse_value_set_url("http://snomed.info/sct?fhir_vs=refset/123")
    with pytest.raises(TerminologyError, match="has no FHIR URI"):
        system_uri("LOINC")
