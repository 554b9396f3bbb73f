"""ACR Index and RadLex loaders: the documented file formats, and clear errors for others."""

from __future__ import annotations

import gzip

import pytest

from terminology import Concept, Terminology, TerminologyError

ACR_CSV = """code,display,parent
7,Gastrointestinal system,
76,Liver,7
761,"Liver, diffuse",76
761.3,Neoplasm of the liver,761
761.3,Hepatic neoplasm,
"""

RADLEX_CSV = '''Class ID,Preferred Label,Synonyms,Definitions,Obsolete,CUI,Semantic Types,Parents,Anatomical_Site
http://radlex.org/RID/RID1,RadLex entity,,,false,,,http://www.w3.org/2002/07/owl#Thing,
http://radlex.org/RID/RID3,anatomical entity,,,false,,,http://radlex.org/RID/RID1,
http://radlex.org/RID/RID58,liver,hepar|hepatic organ,"The large organ, in the upper abdomen",false,,,http://radlex.org/RID/RID3,
http://radlex.org/RID/RID4271,hepatocellular carcinoma,HCC|hepatoma,,false,,,http://radlex.org/RID/RID3|http://radlex.org/RID/RID58,http://radlex.org/RID/RID58
http://radlex.org/RID/RID9999,old term,,,true,,,http://radlex.org/RID/RID3,
http://radlex.org/RID/Preferred_name,a property,,,false,,,,
'''


@pytest.fixture
def terminology(tmp_path) -> Terminology:
    return Terminology(tmp_path / "terminology")


def test_acr_index_csv_with_parents_and_repeated_codes(terminology, tmp_path):
    path = tmp_path / "acr.csv"
    path.write_text(ACR_CSV)
    assert terminology.load("ACR", path) == 4
    assert terminology.lookup("ACR", "761.3") == Concept(
        "ACR", "761.3", "Neoplasm of the liver", synonyms=("Hepatic neoplasm",), parents=("761",),
    )
    assert terminology.lookup("ACR", "761").display == "Liver, diffuse"
    assert terminology.ancestors("ACR", "761.3") == ["761", "76", "7"]
    assert terminology.descendants("ACR", "76") == {"761", "761.3"}
    assert [c.code for c in terminology.suggest("ACR", "761.")] == ["761.3"]
    assert terminology.systems() == ["ICD10", "ACR"]


def test_acr_index_tsv_headed_description(terminology, tmp_path):
    path = tmp_path / "acr.tsv"
    path.write_text('Code\tDescription\n6\tChest\n64\t"Lung, ""quoted"""\n')
    assert terminology.load("ACR", path) == 2
    assert terminology.lookup("ACR", "64").display == 'Lung, "quoted"'
    assert terminology.lookup("ACR", "64").parents == ()


def test_acr_errors_name_the_file_and_the_reason(terminology, tmp_path):
    path = tmp_path / "acr.csv"
    path.write_text("id,name\n1,x\n")
    with pytest.raises(TerminologyError, match=r"acr.csv: not an ACR Index CSV .*no 'code' column \(found: id, name\)"):
        terminology.load("ACR", path)
    path.write_text("code,display\n1,x\n,y\n")
    with pytest.raises(TerminologyError, match="acr.csv: line 3: a row needs a code and a display"):
        terminology.load("ACR", path)
    path.write_text("code,display\n")
    with pytest.raises(TerminologyError, match="acr.csv: no ACR concepts"):
        terminology.load("ACR", path)
    with pytest.raises(TerminologyError, match="nowhere.csv: no such file"):
        terminology.load("ACR", tmp_path / "nowhere.csv")
    with pytest.raises(TerminologyError, match="is a folder"):
        terminology.load("ACR", tmp_path)


@pytest.mark.parametrize("compressed", [False, True], ids=["csv", "csv.gz"])
def test_radlex_bioportal_csv(terminology, tmp_path, compressed):
    path = tmp_path / ("RADLEX.csv.gz" if compressed else "RADLEX.csv")
    path.write_bytes(gzip.compress(RADLEX_CSV.encode()) if compressed else RADLEX_CSV.encode("utf-8-sig"))
    assert terminology.load("RadLex", path) == 4
    assert terminology.lookup("RADLEX", "rid4271") == Concept(
        "RADLEX", "RID4271", "hepatocellular carcinoma", synonyms=("HCC", "hepatoma"), parents=("RID3", "RID58"),
    )
    assert terminology.lookup("RADLEX", "RID1").parents == ()  # owl:Thing is no RadLex class
    assert terminology.lookup("RADLEX", "RID9999") is None  # obsolete
    assert terminology.ancestors("RADLEX", "RID4271") == ["RID3", "RID58", "RID1"]
    assert [c.code for c in terminology.suggest("RADLEX", "hepa")] == ["RID58", "RID4271"]


def test_radlex_errors(terminology, tmp_path):
    path = tmp_path / "radlex.csv"
    path.write_text("Class ID,Label\nhttp://radlex.org/RID/RID1,x\n")
    with pytest.raises(TerminologyError, match="radlex.csv: not a BioPortal RadLex CSV: the header has no 'Preferred Label'"):
        terminology.load("RADLEX", path)
    path.write_bytes(b"not gzip")
    gz = path.rename(tmp_path / "radlex.csv.gz")
    with pytest.raises(TerminologyError, match="radlex.csv.gz: not a readable gzip file"):
        terminology.load("RADLEX", gz)
