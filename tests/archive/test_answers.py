"""Scoring typed quiz answers: synonyms, abbreviations, spelling, and wrong answers staying wrong."""

from __future__ import annotations

import pytest

from archive.answers import diagnosis_terms, expand, score, synonym_groups, words


def test_words_fold_case_accents_punctuation_and_british_spelling():
    assert words("Haemangioma, Liver!") == ("hemangioma", "liver")
    assert words("Tumour") == words("tumor")


@pytest.mark.parametrize("answer", ["hepatoma", "HCC", "Hepatocellular carcinoma", "liver cell carcinoma",
                                    "probably a hepatocellular carcinoma in cirrhosis", "hepatocelular carcinoma"])
def test_every_name_for_hepatocellular_carcinoma_is_right(answer):
    accepted = diagnosis_terms("Hepatocellular carcinoma", [("ICD10", "C22.0", "Liver cell carcinoma")])
    assert score(answer, accepted).correct, answer


@pytest.mark.parametrize("answer", ["haemangioma", "metastasis", "carcinoma", "liver", "", "HC"])
def test_other_diagnoses_and_fragments_are_wrong(answer):
    accepted = diagnosis_terms("Hepatocellular carcinoma", [("ICD10", "C22.0", "Liver cell carcinoma")])
    assert not score(answer, accepted).correct, answer


def test_terminology_synonyms_of_a_code_are_accepted():
    accepted = diagnosis_terms("", [("SNOMED", "1234", "Foo disease")], lambda system, code: ["Bar syndrome"])
    assert score("bar syndrome", accepted).matched == "Bar syndrome"


def test_the_synonym_file_has_no_name_in_two_groups():
    seen: dict[tuple[str, ...], int] = {}
    for n, group in enumerate(synonym_groups()):
        assert len(group) >= 2
        for name in group:
            key = words(name)
            assert seen.setdefault(key, n) == n, f"{name!r} is in two groups"
    assert "SAH" in expand(["subarachnoid haemorrhage"])
