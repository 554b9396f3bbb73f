"""Autocomplete: word prefixes of displays and synonyms, and code prefixes; best matches first."""

from __future__ import annotations

import pytest

from terminology import Terminology

from .rf2 import DISEASE, HCC, LIVER_MALIGNANCY, MALIGNANT, PNEUMONIA, write_rf2_fixture


@pytest.fixture(scope="module")
def terminology(tmp_path_factory) -> Terminology:
    folder = tmp_path_factory.mktemp("suggest")
    terminology = Terminology(folder / "terminology")
    terminology.load("SNOMED", write_rf2_fixture(folder / "release"))
    return terminology


def codes(terminology: Terminology, system: str, text: str, **options) -> list[str]:
    return [c.code for c in terminology.suggest(system, text, **options)]


def test_any_word_of_a_display_or_synonym_case_insensitive(terminology):
    assert codes(terminology, "SNOMED", "HEPATOMA") == [HCC]
    assert codes(terminology, "SNOMED", "carcin") == [HCC]
    assert codes(terminology, "SNOMED", "liv") == [HCC, LIVER_MALIGNANCY]  # "Liver cell ..." starts with it
    assert codes(terminology, "SNOMED", "neoplasm of") == [LIVER_MALIGNANCY]
    assert codes(terminology, "SNOMED", "cell liver") == [HCC]  # every word, in any order
    assert codes(terminology, "SNOMED", "liver pneumonia") == []


def test_exact_then_prefix_then_shorter_terms(terminology):
    assert codes(terminology, "SNOMED", "malig") == [LIVER_MALIGNANCY, MALIGNANT]  # shorter first
    assert codes(terminology, "SNOMED", "disease") == [DISEASE, MALIGNANT]  # the exact term first
    assert codes(terminology, "SNOMED", "pneumonia") == [PNEUMONIA]


def test_codes_by_prefix_exact_first(terminology):
    assert codes(terminology, "SNOMED", HCC) == [HCC]
    assert codes(terminology, "SNOMED", "2") == [HCC, PNEUMONIA]  # shorter code first
    assert codes(terminology, "I10", "c220")[0] == "C22.0"
    assert codes(terminology, "ICD10", "C22", limit=3) == ["C22", "C22.0", "C22.1"]


def test_limit_empty_text_and_a_subtree(terminology):
    assert len(terminology.suggest("ICD10", "neoplasm", limit=7)) == 7
    assert terminology.suggest("SNOMED", "  ") == []
    assert terminology.suggest("SNOMED", "disease", limit=0) == []
    assert codes(terminology, "SNOMED", "disease", within=MALIGNANT) == [MALIGNANT]
    assert codes(terminology, "SNOMED", "liver", within=LIVER_MALIGNANCY) == [LIVER_MALIGNANCY]


def test_icd10_terms(terminology):
    assert codes(terminology, "ICD10", "liver cell") == ["C22.0"]
    assert codes(terminology, "ICD10", "liver disease, unspecified")[0] == "K76.9"


def test_expand_lists_a_subtree_in_display_order(terminology):
    assert [c.display for c in terminology.expand("SNOMED", within=MALIGNANT)] == [
        "Hepatocellular carcinoma", "Malignant neoplasm of liver", "Malignant neoplastic disease",
    ]
    assert len(terminology.expand("SNOMED")) == 5
    assert len(terminology.expand("ICD10", limit=25)) == 25
