"""The embedded tantivy backend through the SearchIndex interface."""

import pytest

from search.index import CaseDocument
from search.tantivy_backend import TantivyIndex


@pytest.fixture
def index(tmp_path):
    idx = TantivyIndex(tmp_path / "index")
    idx.upsert(
        [
            CaseDocument(1, folder_id=10, title="Hepatocellular carcinoma", diagnosis="hepatoma", findings="washout"),
            CaseDocument(2, folder_id=10, title="Liver abscess", findings="rim enhancing collection"),
            CaseDocument(3, folder_id=20, title="Hepatic metastases", findings="multiple lesions", modalities=("CT",)),
        ]
    )
    return idx


def ids(result):
    return {hit.case_id for hit in result.hits}


def test_only_permitted_folders_are_searched(index):
    assert ids(index.search("liver OR hepatic OR hepatocellular", [10])) == {1, 2}
    assert ids(index.search("liver OR hepatic OR hepatocellular", [20])) == {3}
    assert index.search("liver", []).total == 0


def test_stemming_field_scope_and_phrases(index):
    assert ids(index.search("carcinomas", [10, 20])) == {1}
    assert ids(index.search("diagnosis:hepatoma", [10, 20])) == {1}
    assert ids(index.search("title:hepatoma", [10, 20])) == set()
    assert ids(index.search('"rim enhancing"', [10, 20])) == {2}
    assert ids(index.search('"enhancing rim"', [10, 20])) == set()


def test_boolean_operators(index):
    assert ids(index.search("liver AND abscess", [10, 20])) == {2}
    assert ids(index.search("hepatic OR abscess", [10, 20])) == {2, 3}
    assert ids(index.search("liver AND NOT abscess", [10, 20])) == set()


def test_upsert_replaces_and_delete_removes(index):
    index.upsert([CaseDocument(2, folder_id=20, title="Liver abscess, drained")])
    assert ids(index.search("abscess", [10])) == set()
    assert ids(index.search("drained", [20])) == {2}
    index.delete([2])
    assert index.search("abscess", [10, 20]).total == 0
    assert index.search("", [10, 20]).total == 2


@pytest.mark.parametrize("query", ["hepatoma AND (", 'hepatoma "unclosed', "((hepatoma"])
def test_malformed_queries_are_read_leniently(index, query):
    assert ids(index.search(query, [10, 20])) == {1}
