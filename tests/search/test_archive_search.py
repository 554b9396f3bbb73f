"""Search through the archive: cases filed from real DICOM, indexed with their codes' ancestors and
synonyms, found through GET /api/search; and nothing lost while the search backend is down."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from api.app import create_app
from api.runtime import Casebank
from api.settings import Settings
from archive import folders
from archive.models import Case
from ingest.tce.atfi import TeachingFileInfo

from .. import dicom_data
from ..conftest import login
from ..ingest.test_tce_receiver import send
from ..peers import CuttableLink, LiveServer, free_port
from ..csrf_client import BrowserLikeClient

pytestmark = pytest.mark.peers


def teaching_case(title: str, diagnosis: str, codes=(), gmc: str = "7000001", modality_files=("CT_small.dcm",)):
    images = dicom_data.study(list(modality_files), description=title)
    info = TeachingFileInfo(author_name="Jones^Ann^^Dr", author_gmc=gmc, abstract=title, diagnosis=diagnosis,
                            findings=f"Findings of {title.lower()}", codes=tuple(codes))
    report, manifest = dicom_data.tce_export(images, info)
    return [*images, report, manifest]


def cases_arrive(casebank, objects_per_case) -> None:
    with LiveServer(casebank) as live:
        for objects in objects_per_case:
            assert all(status.Status == 0 for status in send(live, objects))
    with casebank.database.session() as session:
        assert len(session.scalars(select(Case)).all()) == len(objects_per_case)


def test_search_api_filters_facets_and_permissions(casebank, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    cases_arrive(casebank, [
        teaching_case("Hepatocellular carcinoma", "HCC in cirrhosis", codes=[("I10", "C22.0", "Liver cell carcinoma")]),
        teaching_case("Lobar pneumonia", "Pneumonia", codes=[("I10", "J18.9", "Pneumonia, unspecified")],
                      modality_files=("MR_small.dcm",)),
    ])
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "alice")
        answer = client.get("/api/search", params={"q": "carcinomas", "facet": ["modality", "icd10_chapter", "folder"]}).json()
        assert answer["total"] == 1 and answer["hits"][0]["title"] == "Hepatocellular carcinoma"
        assert answer["hits"][0]["folder"]["path"] == "/alice" and "<mark>" in answer["hits"][0]["snippet"]
        assert "author" not in answer["hits"][0]
        everything = client.get("/api/search", params={"facet": ["modality", "icd10_chapter", "icd10_block"]}).json()
        assert everything["total"] == 2
        # the manifest (KO) and report (SR) series are not modalities a radiologist filters by
        assert {f["value"]: f["count"] for f in everything["facets"]["modality"]} == {"CT": 1, "MR": 1}
        chapters = {f["value"]: f for f in everything["facets"]["icd10_chapter"]}
        assert set(chapters) == {"II", "X"} and chapters["II"]["count"] == 1 and chapters["II"]["label"]
        block = client.get("/api/search", params={"filter": "code:I10|C15-C26"}).json()  # a block finds C22.0
        assert [h["title"] for h in block["hits"]] == ["Hepatocellular carcinoma"]
        by_modality = client.get("/api/search", params={"filter": "modality:mr"}).json()
        assert [h["title"] for h in by_modality["hits"]] == ["Lobar pneumonia"]
        bad = client.get("/api/search", params={"filter": "nonsense"})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert "FIELD:VALUE" in bad.json()["detail"]
        assert client.get("/api/search", params={"facet": "colour"}).status_code == 422

        login(client, "bob")  # bob may view none of alice's folder
        assert client.get("/api/search", params={"q": "carcinoma"}).json()["total"] == 0
        with casebank.database.session() as session:
            folder = folders.personal_folder(session, session.get(type(alice), alice.id))
            folders.grant(session, alice, folder, bob, view=True)
        assert client.get("/api/search", params={"q": "carcinoma"}).json()["total"] == 1


def test_cases_arrive_while_opensearch_is_down_and_become_searchable_when_it_returns(tmp_path, osmem_url):
    host, _, port = osmem_url.removeprefix("http://").rpartition(":")
    link = CuttableLink(host, int(port))
    settings = Settings(data=tmp_path / "data", dicom_port=free_port(), secret_key="test-secret",
                        search_url=link.url, search_prefix=f"outage-{uuid.uuid4().hex[:8]}")
    with Casebank.open(settings) as casebank:
        from archive import users

        with casebank.database.session() as session:
            users.add_user(session, "alice", email="alice@hospital.example", gmc="7000001",
                           display_name="Dr Alice", password="pw-alice-for-tests-only")
        cases_arrive(casebank, [teaching_case("Before the outage", "Pneumatosis")])
        assert casebank.indexer.pending() == 0
        link.cut()
        cases_arrive_too = [teaching_case(f"During the outage {n}", "Intussusception") for n in range(3)]
        with LiveServer(casebank) as live:
            for objects in cases_arrive_too:
                assert all(status.Status == 0 for status in send(live, objects))  # stored and acknowledged
        assert casebank.indexer.pending() > 0
        with BrowserLikeClient(create_app(casebank)) as client:
            login(client, "alice")
            down = client.get("/api/search", params={"q": "outage"})
            assert down.status_code == 503 and "nothing is lost" in down.json()["detail"]
            link.restore()
            casebank.indexer.catch_up()
            assert casebank.indexer.pending() == 0
            found = client.get("/api/search", params={"q": "during", "size": 10}).json()
            assert sorted(h["title"] for h in found["hits"]) == ["During the outage 0", "During the outage 1",
                                                                  "During the outage 2"]
            assert client.get("/api/search").json()["total"] == 4


def test_reindex_rebuilds_from_the_database(casebank, make_user):
    make_user("alice")
    cases_arrive(casebank, [teaching_case("Hepatocellular carcinoma", "HCC")])
    casebank.index.rebuild(iter(()))  # the index lost everything
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "alice")
        assert client.get("/api/search", params={"q": "carcinoma"}).json()["total"] == 0
        assert casebank.indexer.reindex_all() == 1
        assert client.get("/api/search", params={"q": "carcinoma"}).json()["total"] == 1


def test_snomed_synonyms_and_is_a_closure_are_searchable(casebank, make_user, tmp_path):
    """A case coded 25370001 with no word "hepatoma" in it: once SNOMED CT is loaded (after the case
    arrived), the synonym finds it (it does before, too, from the open synonyms file), and so does a
    filter on its grandparent 64572001 Disease, which finds nothing before."""
    from archive.cases import requeue_cases_coded_in

    from ..terminology.rf2 import DISEASE, HCC, MALIGNANT, PNEUMONIA, write_rf2_fixture

    make_user("alice")
    cases_arrive(casebank, [
        teaching_case("Arterial phase liver mass", "Coded only", codes=[("SCT", HCC, "Hepatocellular carcinoma")]),
        teaching_case("Consolidation", "Coded only", codes=[("SCT", PNEUMONIA, "Pneumonia")]),
    ])
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "alice")
        # not loaded yet: the is-a closure is unknown (the open synonyms file already gives "hepatoma")
        assert client.get("/api/search", params={"filter": f"code:SNOMED|{MALIGNANT}"}).json()["total"] == 0
        casebank.terminology.load("SNOMED", write_rf2_fixture(tmp_path / "snomed"))
        with casebank.database.session() as session:
            assert requeue_cases_coded_in(session, "SNOMED") == 2

        def titles(**params) -> list[str]:
            return sorted(h["title"] for h in client.get("/api/search", params=params).json()["hits"])

        assert titles(q="hepatoma") == ["Arterial phase liver mass"]
        assert titles(filter=f"code:SNOMED|{MALIGNANT}") == ["Arterial phase liver mass"]
        assert titles(filter=f"code:SCT|{DISEASE}") == ["Arterial phase liver mass", "Consolidation"]
        facet = client.get("/api/search", params={"facet": "snomed"}).json()["facets"]["snomed"]
        assert {f["value"]: f["label"] for f in facet} == {HCC: "Hepatocellular carcinoma", PNEUMONIA: "Pneumonia"}


def test_custom_catalogue_fields_are_facets_and_ranges_after_an_edit(casebank, make_user):
    from archive import catalogue
    from archive.catalogue import FieldDefinition
    from archive.models import FieldType

    alice = make_user("alice")
    cases_arrive(casebank, [teaching_case("Renal mass", "Renal cell carcinoma"), teaching_case("Renal cyst", "Bosniak I")])
    with casebank.database.session() as session:
        folder = folders.personal_folder(session, session.get(type(alice), alice.id))
        catalogue.define_fields(session, session.get(type(alice), alice.id), folder, [
            FieldDefinition("size_mm", FieldType.NUMBER), FieldDefinition("seen", FieldType.DATE),
            FieldDefinition("exam", FieldType.KEYWORD, choices=("FRCR 2B", "none"))])
    with BrowserLikeClient(create_app(casebank)) as client:
        login(client, "alice")
        ids = {h["title"]: h["case_id"] for h in client.get("/api/search").json()["hits"]}
        for title, fields in (("Renal mass", {"size_mm": 42, "seen": "2024-03-01", "exam": "FRCR 2B"}),
                              ("Renal cyst", {"size_mm": 18.5, "seen": "2023-11-20", "exam": "none"})):
            assert client.patch(f"/api/cases/{ids[title]}", json={"custom_fields": fields}).status_code == 200

        def titles(*filters: str) -> list[str]:
            return sorted(h["title"] for h in client.get("/api/search", params={"filter": list(filters)}).json()["hits"])

        assert titles("custom.size_mm:20..") == ["Renal mass"]
        assert titles("custom.seen:..2023-12-31") == ["Renal cyst"]
        assert titles("custom.exam:FRCR 2B") == ["Renal mass"]
        facet = client.get("/api/search", params={"facet": "custom.exam"}).json()["facets"]["custom.exam"]
        assert facet == [{"value": "FRCR 2B", "count": 1, "label": ""}, {"value": "none", "count": 1, "label": ""}]


def test_age_bands_and_custom_numbers_in_the_document():
    from search.document import age_band, custom_number

    assert [age_band(a) for a in ("045Y", "003M", "090Y", "009Y", "bad")] == ["40-49", "0-9", "90+", "0-9", ""]
    assert [custom_number(v) for v in (42, 18.5, "2024-03-01", "FRCR", True)] == [42.0, 18.5, 20240301.0, None, None]
