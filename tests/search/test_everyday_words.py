"""Everyday words find cases with no licensed SNOMED CT release: the reviewed synonyms file puts
"hepatoma", "HCC"... into the document of a case coded ICD-10 C22.0; and a bare `*` lists every
case the user may see. Run on tantivy and on OpenSearch (osmem-server), end to end through the archive."""

from __future__ import annotations

import uuid

import pytest

from api.app import create_app
from api.settings import Settings
from archive import folders
from search.document import radiology_synonyms
from search.query import MatchAll, parse

from ..conftest import login
from ..csrf_client import BrowserLikeClient
from ..peers import free_port
from .backends import BACKENDS
from .test_archive_search import cases_arrive, teaching_case

EVERYDAY_WORDS = ("hepatoma", "HCC", "hepatocellular carcinoma", "liver cell carcinoma")
LIVER = "Arterial phase liver mass"
CHEST = "Consolidation"


@pytest.fixture(params=[b for b in BACKENDS if b != "opensearch"])
def settings(request, tmp_path, database_url) -> Settings:
    """The archive on each search backend the contract suite uses."""
    search = {}
    if request.param == "osmem":
        search = {"search_url": request.getfixturevalue("osmem_url"), "search_prefix": f"words-{uuid.uuid4().hex[:8]}"}
    return Settings(data=tmp_path / "data", database_url=database_url, dicom_port=free_port(),
                    secret_key="test-secret", **search)


def titles(client, **params) -> list[str]:
    answer = client.get("/api/search", params={"size": 50, **params})
    assert answer.status_code == 200, answer.text
    return sorted(h["title"] for h in answer.json()["hits"])


@pytest.mark.peers
def test_everyday_words_find_a_case_coded_c22_0_without_snomed(casebank, make_user):
    make_user("alice")
    assert casebank.terminology.lookup("SNOMED", "25370001") is None  # no SNOMED CT release loaded
    cases_arrive(casebank, [
        # neither the title, the findings nor the diagnosis says hepatoma, HCC or hepatocellular
        teaching_case(LIVER, "Coded only", codes=[("I10", "C22.0", "Liver cell carcinoma")]),
        teaching_case(CHEST, "Pneumonia", codes=[("I10", "J18.9", "Pneumonia, unspecified")]),
    ])
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "alice")
        for words in EVERYDAY_WORDS:
            assert titles(client, q=words) == [LIVER], words
        assert titles(client, q="hcc") == [LIVER]  # abbreviations are whole words, in any case
        assert titles(client, q='"primary liver cancer"') == [LIVER]
        assert titles(client, q="HC") == []  # ...and not a part of one
        # the diagnosis text is expanded too: "Pneumonia" brings its group (CAP) but no liver words
        assert titles(client, q="CAP") == [CHEST]
        assert titles(client, q="pneumonia") == [CHEST]


@pytest.mark.peers
def test_a_bare_star_lists_every_visible_case(casebank, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    cases_arrive(casebank, [
        teaching_case(LIVER, "Coded only", codes=[("I10", "C22.0", "Liver cell carcinoma")], gmc="7000001"),
        teaching_case(CHEST, "Pneumonia", gmc="7000001"),
        teaching_case("Bob's renal mass", "Renal cell carcinoma", gmc="7000002"),
    ])
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "alice")
        empty = client.get("/api/search").json()
        assert empty["total"] == 2
        for text in ("*", " * ", "\t*\n"):
            star = client.get("/api/search", params={"q": text})
            assert star.status_code == 200, star.text
            assert star.json()["total"] == empty["total"]
            assert sorted(h["title"] for h in star.json()["hits"]) == sorted([CHEST, LIVER])  # not bob's case
        assert titles(client, q="* -pneumonia") == [LIVER]
        assert client.get("/search", params={"q": "*"}).status_code == 200  # the search page too

        login(client, "bob")
        assert titles(client, q="*") == ["Bob's renal mass"]
        with casebank.database.session() as session:
            folder = folders.personal_folder(session, session.get(type(alice), alice.id))
            folders.grant(session, alice, folder, bob, view=True)
        assert titles(client, q="*") == sorted(["Bob's renal mass", CHEST, LIVER])
        assert client.get("/api/search", params={"q": "*"}).json()["total"] == 3


def test_synonyms_come_from_whole_names_in_the_reviewed_file():
    assert parse("*") == parse("  *  ") == parse("") == MatchAll()
    liver = radiology_synonyms(["Liver cell carcinoma"])
    assert {"hepatocellular carcinoma", "hepatoma", "HCC", "primary liver cancer"} <= set(liver)
    assert "Liver cell carcinoma" not in liver and "liver cell carcinoma" not in liver
    assert radiology_synonyms(["Carcinoma of the liver, unspecified"]) == []  # whole names only
    assert radiology_synonyms(["Subarachnoid haemorrhage"]) == ["SAH"]
    assert radiology_synonyms(["", "Coded only"]) == []
