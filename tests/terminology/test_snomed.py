"""SNOMED CT from an RF2 Snapshot release (the tests' own tiny one, see rf2.py)."""

from __future__ import annotations

import pytest

from terminology import Concept, Terminology, TerminologyError
from terminology.snomed import without_semantic_tag

from .rf2 import (
    ACTIVE_CODES, DISEASE, HCC, INACTIVE, LIVER_MALIGNANCY, MALIGNANT, PNEUMONIA, VERSION, write_rf2_fixture,
)


@pytest.fixture
def release(tmp_path):
    return write_rf2_fixture(tmp_path / "release")


@pytest.fixture
def terminology(tmp_path, release) -> Terminology:
    terminology = Terminology(tmp_path / "terminology")
    terminology.load("SCT", release)
    return terminology


def test_active_concepts_with_fsn_display_and_synonyms(terminology):
    assert terminology.systems() == ["ICD10", "SNOMED"]
    assert terminology.lookup("SNOMED", HCC) == Concept(
        "SNOMED", HCC, "Hepatocellular carcinoma", synonyms=("Hepatoma", "Liver cell carcinoma"), parents=(MALIGNANT,),
    )
    assert terminology.lookup("SRT", LIVER_MALIGNANCY).display == "Malignant neoplasm of liver"
    assert terminology.lookup("SNOMED", INACTIVE) is None  # inactive concept
    assert terminology.lookup("SNOMED", PNEUMONIA).parents == (DISEASE,)  # inactive is-a ignored
    assert terminology.suggest("SNOMED", "retired") == []  # neither the inactive concept nor the inactive synonym


def test_transitive_ancestors_and_descendants(terminology):
    assert terminology.ancestors("SNOMED", HCC) == [MALIGNANT, DISEASE]
    assert terminology.ancestors("SNOMED", DISEASE) == []
    assert terminology.ancestors("SNOMED", "123") == []
    assert terminology.descendants("SNOMED", DISEASE) == ACTIVE_CODES - {DISEASE}
    assert terminology.descendants("SNOMED", MALIGNANT) == {HCC, LIVER_MALIGNANCY}
    assert terminology.descendants("SNOMED", HCC) == set()


def test_load_reports_progress_and_counts(tmp_path, release):
    calls: list[tuple[int, int | None]] = []
    assert Terminology(tmp_path / "t").load("SNOMED", release, lambda done, total: calls.append((done, total))) == 5
    assert calls[-1] == (5, 5)


def test_a_new_load_replaces_the_earlier_one(terminology, release):
    concepts = next(release.rglob("sct2_Concept_Snapshot_*.txt"))
    concepts.write_text(concepts.read_text().replace(f"{PNEUMONIA}\t20250101\t1", f"{PNEUMONIA}\t20250101\t0"))
    assert terminology.load("SNOMED", release) == 4
    assert terminology.lookup("SNOMED", PNEUMONIA) is None
    assert terminology.descendants("SNOMED", DISEASE) == ACTIVE_CODES - {DISEASE, PNEUMONIA}
    assert terminology.lookup("SNOMED", HCC).synonyms == ("Hepatoma", "Liver cell carcinoma")


def test_bad_releases_are_named_and_leave_the_earlier_load_in_place(terminology, release, tmp_path):
    with pytest.raises(TerminologyError, match="no such folder|not an RF2 release folder"):
        terminology.load("SNOMED", tmp_path / "missing")
    relationships = next(release.rglob("sct2_Relationship_Snapshot_*.txt"))
    relationships.rename(relationships.with_suffix(".bak"))
    with pytest.raises(TerminologyError, match=r"not an RF2 release: no sct2_Relationship_Snapshot_\*\.txt"):
        terminology.load("SNOMED", release)
    relationships.with_suffix(".bak").rename(relationships)

    descriptions = next(release.rglob("sct2_Description_Snapshot-en_*.txt"))
    original = descriptions.read_text()
    descriptions.write_text(original.replace("conceptId", "concept"))
    with pytest.raises(TerminologyError) as header:
        terminology.load("SNOMED", release)
    assert str(descriptions) in str(header.value) and "header" in str(header.value)
    descriptions.write_text(original + "99011\t20250101\t1\n")
    with pytest.raises(TerminologyError, match=f"{descriptions.name}: line 15: expected 9 tab-separated fields, found 3"):
        terminology.load("SNOMED", release)
    descriptions.write_bytes(original.encode().replace(b"Hepatoma", b"Hepat\xffoma"))
    with pytest.raises(TerminologyError, match="not UTF-8"):
        terminology.load("SNOMED", release)

    assert terminology.lookup("SNOMED", HCC).display == "Hepatocellular carcinoma"


def test_the_release_version_and_quotes_in_terms(tmp_path, release):
    from terminology.snomed import read_release

    descriptions = next(release.rglob("sct2_Description_Snapshot-en_*.txt"))
    descriptions.write_text(descriptions.read_text().replace("\tHepatoma\t", '\t"Hepatoma"\t'))
    read = read_release(release)
    assert read.version == VERSION
    assert '"Hepatoma"' in read.synonyms[HCC]


@pytest.mark.parametrize(("fsn", "display"), [
    ("Hepatocellular carcinoma (disorder)", "Hepatocellular carcinoma"),
    ("Structure of C1 (cervical) vertebra (body structure)", "Structure of C1 (cervical) vertebra"),
    ("No tag here", "No tag here"),
])
def test_semantic_tags_are_dropped_from_the_display(fsn, display):
    assert without_semantic_tag(fsn) == display
