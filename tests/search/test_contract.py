"""One contract for every search backend: the same fixture corpus, the same queries, the same hits
and facet counts. Each query's expected cases are written out, and the backends are compared."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from search.index import CaseDocument, SearchQuery
from search.query import QueryError

from .backends import BACKENDS, open_backend

ALL = frozenset({10, 20, 30})
HCC_CODES = ("ICD10|C22", "ICD10|C22.0", "ICD10|C15-C26", "ICD10|C00-C75", "ICD10|C00-C97", "ICD10|II",
             "SNOMED|25370001", "SNOMED|363346000", "SNOMED|64572001")


def when(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=timezone.utc)


CORPUS = [
    CaseDocument(1, 10, "Hepatocellular carcinoma in cirrhosis", diagnosis="Hepatoma",
                 findings="Arterial enhancement with washout in a cirrhotic liver", keywords=("liver", "HCC"),
                 codes=HCC_CODES, code_texts=("Hepatocellular carcinoma", "Hepatoma", "Liver cell carcinoma"),
                 icd10=("C22.0",), icd10_chapters=("II",), icd10_blocks=("C15-C26",), snomed=("25370001",),
                 modalities=("CT",), body_parts=("ABDOMEN",), sex="M", age_band="60-69",
                 custom=("grade=advanced", "teaching_set=FRCR", "size_mm=34", "diagnosed=2023-04-12"),
                 custom_numbers={"size_mm": 34, "diagnosed": 20230412}, created=when(2023, 5), likes=7),
    CaseDocument(2, 10, "Liver abscess", findings="Rim enhancing collections in the liver",
                 discussion="Unlike a hepatoma, an abscess has a rim", keywords=("liver",),
                 modalities=("CT", "US"), body_parts=("ABDOMEN",), sex="F", age_band="40-49",
                 custom=("grade=basic", "size_mm=12"), custom_numbers={"size_mm": 12}, created=when(2024, 2), likes=2),
    CaseDocument(3, 20, "Hepatic metastases", findings="Multiple cancers spread to the liver",
                 codes=("ICD10|C78", "ICD10|C78.7", "ICD10|C76-C80", "ICD10|C00-C97", "ICD10|II"),
                 icd10=("C78.7",), icd10_chapters=("II",), icd10_blocks=("C76-C80",),
                 modalities=("MR",), body_parts=("ABDOMEN",), sex="F", age_band="60-69",
                 custom=("grade=advanced", "size_mm=50.5", "diagnosed=2024-01-01"),
                 custom_numbers={"size_mm": 50.5, "diagnosed": 20240101}, created=when(2024, 8), likes=12),
    CaseDocument(4, 20, "Right lower lobe pneumonia", findings="Consolidation with air bronchograms",
                 diagnosis="Pneumonia", codes=("ICD10|J18", "ICD10|J18.9", "ICD10|J09-J18", "ICD10|X",
                                               "SNOMED|233604007", "SNOMED|64572001"),
                 icd10=("J18.9",), icd10_chapters=("X",), icd10_blocks=("J09-J18",), snomed=("233604007",),
                 modalities=("CR",), body_parts=("CHEST",), sex="M", age_band="70-79",
                 custom=("grade=basic",), created=when(2022, 1), likes=0),
    CaseDocument(5, 30, "Small bowel obstruction", history="Vomiting after surgery",
                 findings="Dilated small bowel loops with a transition point", diagnosis="Adhesional obstruction",
                 modalities=("CT",), body_parts=("ABDOMEN",), sex="F", age_band="30-39",
                 created=when(2021, 3), likes=4),
    CaseDocument(6, 30, "Cirrhosis without a focal lesion", findings="Nodular liver surface, no mass",
                 modalities=("US",), body_parts=("ABDOMEN",), sex="M", age_band="50-59",
                 created=when(2020, 6), likes=1),
]


@pytest.fixture(params=BACKENDS)
def index(request, tmp_path):
    backend = open_backend(request.param, tmp_path, request)
    backend.upsert(CORPUS)
    return backend


def ids(index, text: str = "", folders=ALL, **kwargs) -> set[int]:
    return {hit.case_id for hit in index.search(SearchQuery(frozenset(folders), text, limit=100, **kwargs)).hits}


def test_stemming_finds_other_word_forms(index):
    assert ids(index, "cancer") == {3}  # "cancers"
    assert ids(index, "enhance") == {1, 2}  # "enhancement", "enhancing"
    assert ids(index, "collection") == {2}


def test_phrases_keep_word_order(index):
    assert ids(index, '"small bowel obstruction"') == {5}
    assert ids(index, '"bowel small"') == set()


def test_prefixes_and_fuzzy_matching_of_misspellings(index):
    assert ids(index, "hepato*") == {1, 2}  # hepatocellular, hepatoma
    assert ids(index, "pnemonia~") == {4}
    assert ids(index, "cirhosis~") == {1, 6}
    assert ids(index, "pnemonia") == set()


def test_field_scoped_terms(index):
    assert ids(index, "diagnosis:hepatoma") == {1}
    assert ids(index, "hepatoma") == {1, 2}  # case 2 mentions it in its discussion
    assert ids(index, "title:liver") == {2}
    assert ids(index, "modality:mr") == {3}


def test_boolean_operators(index):
    assert ids(index, "liver AND abscess") == {2}
    assert ids(index, "abscess OR pneumonia") == {2, 4}
    assert ids(index, "liver NOT cirrhosis") == {2, 3}
    assert ids(index, "-liver") == {4, 5}
    assert ids(index, "(abscess OR metastases) AND modality:CT") == {2}


def test_filters_on_facet_fields_combine(index):
    assert ids(index, filters=(("modality", "CT"),)) == {1, 2, 5}
    assert ids(index, filters=(("modality", "CT"), ("modality", "MR"))) == {1, 2, 3, 5}  # OR within a field
    assert ids(index, filters=(("modality", "ct"), ("sex", "F"))) == {2, 5}  # AND across fields
    assert ids(index, "liver", filters=(("custom.grade", "advanced"),)) == {1, 3}
    assert ids(index, filters=(("year", "2024"),)) == {2, 3}


def test_number_and_date_custom_fields_filter_by_range(index):
    assert ids(index, filters=(("custom.size_mm", "10..40"),)) == {1, 2}
    assert ids(index, filters=(("custom.size_mm", "..20"),)) == {2}
    assert ids(index, filters=(("custom.size_mm", "40.."),)) == {3}
    assert ids(index, filters=(("custom.size_mm", "50.5..50.5"),)) == {3}
    assert ids(index, filters=(("custom.diagnosed", "2024-01-01.."),)) == {3}
    assert ids(index, filters=(("custom.size_mm", "..20"), ("custom.size_mm", "45.."))) == {2, 3}  # OR
    assert ids(index, filters=(("custom.size_mm", "..40"), ("custom.diagnosed", "2023-01-01..2023-12-31"))) == {1}
    assert ids(index, filters=(("custom.size_mm", "12"),)) == {2}  # a plain value is an exact match


def test_hierarchy_filters_find_descendants(index):
    assert ids(index, filters=(("code", "ICD10|C15-C26"),)) == {1}  # an ICD-10 block
    assert ids(index, filters=(("code", "ICD10|II"),)) == {1, 3}  # a chapter: neoplasms
    assert ids(index, filters=(("code", "SNOMED|64572001"),)) == {1, 4}  # SNOMED "Disease" and its descendants
    assert ids(index, filters=(("icd10_chapter", "X"),)) == {4}


def test_synonyms_of_coded_entries_are_searchable(index):
    assert ids(index, '"liver cell carcinoma"') == {1}
    assert ids(index, "codes:hepatoma") == {1}


def test_permission_filter_is_part_of_every_query(index):
    assert ids(index, "liver", folders={10}) == {1, 2}
    assert ids(index, "liver", folders={20, 30}) == {3, 6}
    assert ids(index, "", folders=set()) == set()
    result = index.search(SearchQuery(frozenset({30}), "", facets=("modality", "folder")))
    assert result.total == 2
    assert {v.value: v.count for v in result.facets["modality"]} == {"CT": 1, "US": 1}
    assert {v.value for v in result.facets["folder"]} == {"30"}


def test_facet_counts(index):
    result = index.search(SearchQuery(ALL, "", facets=("modality", "body_part", "icd10_chapter", "icd10_block", "snomed",
                                                       "sex", "age_band", "year", "folder", "custom.grade", "keyword")))
    counts = {name: {v.value: v.count for v in values} for name, values in result.facets.items()}
    assert counts["modality"] == {"CT": 3, "US": 2, "MR": 1, "CR": 1}
    assert [v.value for v in result.facets["modality"]] == ["CT", "US", "CR", "MR"]  # by count, then value
    assert counts["body_part"] == {"ABDOMEN": 5, "CHEST": 1}
    assert counts["icd10_chapter"] == {"II": 2, "X": 1}
    assert counts["icd10_block"] == {"C15-C26": 1, "C76-C80": 1, "J09-J18": 1}
    assert counts["snomed"] == {"25370001": 1, "233604007": 1}
    assert counts["sex"] == {"F": 3, "M": 3}
    assert counts["age_band"] == {"60-69": 2, "40-49": 1, "70-79": 1, "30-39": 1, "50-59": 1}
    assert counts["year"] == {"2020": 1, "2021": 1, "2022": 1, "2023": 1, "2024": 2}
    assert counts["folder"] == {"10": 2, "20": 2, "30": 2}
    assert counts["custom.grade"] == {"advanced": 2, "basic": 2}
    assert counts["keyword"] == {"liver": 2, "hcc": 1}


def test_facets_count_the_filtered_result(index):
    result = index.search(SearchQuery(ALL, "liver", filters=(("sex", "F"),), facets=("modality",)))
    assert result.total == 2
    assert {v.value: v.count for v in result.facets["modality"]} == {"CT": 1, "US": 1, "MR": 1}


def test_sorting_by_date_and_likes_and_paging(index):
    by_date = index.search(SearchQuery(ALL, "", sort="date", limit=3))
    assert [h.case_id for h in by_date.hits] == [3, 2, 1] and by_date.total == 6
    by_likes = index.search(SearchQuery(ALL, "", sort="likes", limit=2, offset=1))
    assert [h.case_id for h in by_likes.hits] == [1, 5]
    pages = [h.case_id for offset in (0, 2, 4) for h in index.search(SearchQuery(ALL, "", sort="date", limit=2, offset=offset)).hits]
    assert pages == [3, 2, 1, 4, 5, 6]


def test_snippets_highlight_the_match(index):
    [hit] = index.search(SearchQuery(ALL, "washout")).hits
    assert "<mark>washout</mark>" in hit.snippet and hit.title == "Hepatocellular carcinoma in cirrhosis"
    assert hit.folder_id == 10


def test_upsert_replaces_and_delete_removes(index):
    index.upsert([CaseDocument(2, 20, "Liver abscess, drained", findings="drained collection")])
    assert ids(index, "abscess", folders={10}) == set()
    assert ids(index, "drained") == {2}
    index.delete([2])
    assert ids(index, "abscess") == set() and index.search(SearchQuery(ALL, "")).total == 5


def test_rebuild_replaces_everything(index):
    count = index.rebuild(iter(CORPUS[:2]))
    assert count == 2 and ids(index) == {1, 2}


@pytest.mark.parametrize("query", ["hepatoma AND (", 'hepatoma "', "((hepatoma", "hepatoma)"])
def test_malformed_queries_are_read_leniently(index, query):
    assert ids(index, query) == {1, 2}


def test_unknown_fields_are_refused_with_the_field_named(index):
    with pytest.raises(QueryError, match="colour"):
        ids(index, "colour:red")
    with pytest.raises(QueryError, match="shoe_size"):
        ids(index, facets=("shoe_size",))


def test_backends_agree_on_every_query(tmp_path, request):
    """The same queries on every backend in one run: identical hit sets and facet counts."""
    backends = [open_backend(kind, tmp_path / kind, request) for kind in BACKENDS]
    for backend in backends:
        backend.upsert(CORPUS)
    queries = [
        SearchQuery(ALL, text, filters=filters, facets=("modality", "icd10_chapter", "custom.grade", "year"), limit=100)
        for text in ("", "liver", "cancers", "hepato*", "pnemonia~", "liver NOT cirrhosis", '"small bowel"',
                     "diagnosis:hepatoma", "abscess OR pneumonia")
        for filters in ((), (("modality", "CT"),), (("code", "ICD10|II"),), (("custom.size_mm", "20.."),))
    ]
    for query in queries:
        answers = [backend.search(query) for backend in backends]
        first = answers[0]
        for kind, answer in zip(BACKENDS[1:], answers[1:], strict=True):
            assert {h.case_id for h in answer.hits} == {h.case_id for h in first.hits}, (kind, query)
            assert answer.total == first.total and answer.facets == first.facets, (kind, query)


def test_opensearch_reindex_swaps_the_alias_to_a_new_index(request, tmp_path):
    """No downtime: the alias moves in one request to a fully loaded index; the old one is dropped."""
    index = open_backend("osmem", tmp_path, request)
    index.upsert(CORPUS)
    [before] = list(index.client.indices.get_alias(name=index.alias))
    assert index.rebuild(iter(CORPUS[:3])) == 3
    [after] = list(index.client.indices.get_alias(name=index.alias))
    assert after != before and not index.client.indices.exists(index=before)
    assert ids(index) == {1, 2, 3}
    template = index.client.indices.get_index_template(name=index.alias)["index_templates"][0]
    assert template["index_template"]["index_patterns"] == [f"{index.alias}-*"]
