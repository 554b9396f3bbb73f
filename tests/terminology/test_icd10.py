"""ICD-10 is built in: no loading, codes with or without the dot, chapters and blocks."""

from __future__ import annotations

import threading

import pytest

from terminology import Concept, Terminology, TerminologyError, canonical_system


@pytest.fixture
def terminology(tmp_path) -> Terminology:
    return Terminology(tmp_path / "terminology")


def test_ancestors_nearest_first_as_who_prints_them(terminology):
    assert terminology.ancestors("ICD10", "C22.0") == ["C22", "C15-C26", "C00-C75", "C00-C97", "II"]
    assert terminology.ancestors("I10", "c220") == terminology.ancestors("ICD-10", "C22.0")
    assert terminology.ancestors("ICD10", "II") == []
    assert terminology.ancestors("ICD10", "X99.9") == []


def test_chapter_and_most_specific_block(terminology):
    assert terminology.icd10_chapter("C22.0") == "II"
    assert terminology.icd10_block("C22.0") == "C15-C26"
    assert terminology.icd10_block("C220") == "C15-C26"
    assert terminology.icd10_chapter("J18.9") == "X"
    assert terminology.icd10_block("C15-C26") == "C15-C26"
    assert terminology.icd10_block("C00-C75") == "C00-C75"
    assert terminology.icd10_chapter("II") == "II" and terminology.icd10_block("II") is None
    assert terminology.icd10_chapter("nonsense") is None and terminology.icd10_block("") is None


def test_lookup_and_descendants(terminology):
    assert terminology.lookup("ICD10", "c22.0") == Concept(
        "ICD10", "C22.0", "Malignant neoplasm: Liver cell carcinoma", parents=("C22",),
    )
    assert terminology.lookup("ICD10", "C22.99") is None
    assert terminology.descendants("ICD10", "C22") == {f"C22.{n}" for n in (0, 1, 2, 3, 4, 7, 9)}
    assert {"C22", "C22.0", "C15"} <= terminology.descendants("ICD10", "C15-C26")
    assert terminology.descendants("ICD10", "C22.0") == set()


def test_systems_before_anything_is_loaded(terminology):
    assert terminology.systems() == ["ICD10"]


def test_the_store_is_created_on_first_use(tmp_path):
    terminology = Terminology(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
    assert terminology.lookup("ICD10", "C22") is not None
    assert (tmp_path / "a" / "b" / "terminology.sqlite").is_file()


def test_threads_share_one_terminology(terminology):
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(terminology.ancestors("ICD10", "C22.0") + [c.code for c in terminology.suggest("ICD10", "liver cell")])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [["C22", "C15-C26", "C00-C75", "C00-C97", "II", "C22.0"]] * 8


@pytest.mark.parametrize(("designator", "system"), [
    ("I10", "ICD10"), ("ICD10", "ICD10"), ("icd-10", "ICD10"),
    ("SCT", "SNOMED"), ("SRT", "SNOMED"), ("SNM3", "SNOMED"), ("snomed", "SNOMED"), ("SNOMED-CT", "SNOMED"),
    ("SnomedCT", "SNOMED"), ("acr", "ACR"), ("RadLex", "RADLEX"), ("99local", "99LOCAL"), ("DCM", "DCM"),
])
def test_canonical_system(designator, system):
    assert canonical_system(designator) == system


def test_unknown_systems_and_loading_icd10_are_refused(terminology, tmp_path):
    with pytest.raises(TerminologyError, match="unknown code system '99LOCAL'"):
        terminology.lookup("99LOCAL", "1")
    with pytest.raises(TerminologyError, match="ICD10 is built in"):
        terminology.load("I10", tmp_path)
    with pytest.raises(TerminologyError, match="unknown code system 'LOINC'"):
        terminology.load("LOINC", tmp_path)
