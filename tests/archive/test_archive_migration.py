"""Migration out and in: an archive of 200 cases with folders, rights, catalogue fields, likes, a
quiz and a cohort is exported, imported into an empty archive, and answers 30 searches (text,
facets, code hierarchy, catalogue ranges) with identical hits and facet counts for every user;
merged into an archive in use, its users are matched by GMC number."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from api.runtime import Casebank
from api.settings import Settings
from archive import catalogue, cohorts, folders, quizzes, users
from archive.cases import CaseUpdate, Code, update_case
from archive.catalogue import FieldDefinition
from archive.migration import export_archive, import_archive
from archive.models import Case, CohortVersion, FieldType, Instance, Like, Quiz, User
from archive.security import verify_password
from archive.senders import Sender
from search.service import SearchRequest, search_cases

from ..conftest import password_of
from ..peers import free_port
from ..search.test_archive_search import teaching_case

DIAGNOSES = [("Hepatocellular carcinoma", "C22.0", "Liver cell carcinoma", "CT_small.dcm"),
             ("Lobar pneumonia", "J18.9", "Pneumonia, unspecified", "MR_small.dcm"),
             ("Pulmonary embolism", "I26.9", "Pulmonary embolism without acute cor pulmonale", "CT_small.dcm"),
             ("Acute appendicitis", "K35.8", "Acute appendicitis, other and unspecified", "CT_small.dcm")]
CASES = 200
SEARCHES = [
    SearchRequest(text="carcinoma"), SearchRequest(text="pneumonia"), SearchRequest(text="embolism"),
    SearchRequest(text="appendicitis"), SearchRequest(text="findings"), SearchRequest(text="case 17"),
    SearchRequest(text="nothing-like-this"), SearchRequest(text="hepatocellular carcinoma", sort="date"),
    SearchRequest(facets=("modality", "folder", "icd10_chapter")), SearchRequest(facets=("icd10_block",)),
    SearchRequest(filters=("modality:CT",), facets=("modality",)), SearchRequest(filters=("modality:MR",)),
    SearchRequest(filters=("code:I10|C15-C26",)), SearchRequest(filters=("code:I10|J00-J99",), facets=("modality",)),
    SearchRequest(filters=("code:I10|I26.9",)), SearchRequest(filters=("code:I10|K35-K38",)),
    SearchRequest(filters=("custom.size_mm:20..",)), SearchRequest(filters=("custom.size_mm:..15",)),
    SearchRequest(filters=("custom.size_mm:10..30",), facets=("custom.exam",)),
    SearchRequest(filters=("custom.exam:FRCR 2B",)), SearchRequest(filters=("custom.seen:..2024-06-30",)),
    SearchRequest(filters=("custom.seen:2024-07-01..",), facets=("custom.exam",)),
    SearchRequest(text="carcinoma", filters=("modality:CT",), facets=("folder",)),
    SearchRequest(text="pneumonia", facets=("custom.exam", "modality")),
    SearchRequest(facets=("custom.exam",), size=100), SearchRequest(page=2, size=50),
    SearchRequest(page=3, size=50, sort="date"), SearchRequest(text="embolism", filters=("custom.exam:none",)),
    SearchRequest(filters=("modality:CT", "code:I10|K35-K38"), facets=("icd10_chapter",)),
    SearchRequest(text="acute", facets=("folder", "modality", "custom.exam")),
]


def answers(casebank: Casebank, username: str) -> list[object]:
    """Every search as `username`: total, hits (title and folder path) and facet counts."""
    out = []
    with casebank.database.session() as session:
        user = users.get_user(session, username)
        paths = {f.id: folders.folder_path(session, f) for f, _ in folders.list_visible_folders(session, user)}
        for request in SEARCHES:
            result = search_cases(session, casebank.index, user, request)
            hits = sorted((h.title, paths.get(session.get_one(Case, h.case_id).folder_id, "?")) for h in result.hits)
            facets = {name: sorted((f.value, f.count) for f in values) for name, values in result.facets.items()}
            out.append((result.total, hits, facets))
    return out


def accept(casebank: Casebank, objects, user_id: int) -> None:  # type: ignore[no-untyped-def]
    for ds in objects:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        assert casebank.intake.accept(buffer.getvalue(), Sender(user_id=user_id)).ok


@pytest.fixture
def source(casebank, make_user):
    """alice's 200 cases: half in a shared folder with five catalogue fields that bob may view."""
    alice = make_user("alice")
    make_user("bob"), make_user("carol")
    for n in range(CASES):
        diagnosis, code, display, image = DIAGNOSES[n % len(DIAGNOSES)]
        accept(casebank, teaching_case(f"{diagnosis} case {n}", diagnosis, codes=[("I10", code, display)],
                                       gmc=alice.gmc, modality_files=(image,)), alice.id)
    with casebank.database.session() as session:
        owner, viewer = users.get_user(session, "alice"), users.get_user(session, "bob")
        shared = folders.create_folder(session, owner, "teaching", parent=folders.personal_folder(session, owner))
        chest = folders.create_folder(session, owner, "chest", parent=shared)
        catalogue.define_fields(session, owner, chest, [
            FieldDefinition("size_mm", FieldType.NUMBER), FieldDefinition("seen", FieldType.DATE),
            FieldDefinition("exam", FieldType.KEYWORD, choices=("FRCR 2B", "none")),
            FieldDefinition("level", FieldType.KEYWORD, choices=("ST1", "ST3", "consultant")),
            FieldDefinition("reviewer", FieldType.KEYWORD)])
        folders.grant(session, owner, shared, viewer, view=True)
        ids = sorted(session.scalars(select(Case.id)))
        for n, case_id in enumerate(ids):
            diagnosis, code, display, _ = DIAGNOSES[n % len(DIAGNOSES)]
            update_case(session, owner, case_id, CaseUpdate(codes=[Code("ICD10", code, display)], keywords=[f"k{n % 7}"]))
            if n % 2:
                session.get_one(Case, case_id).folder = chest
                session.flush()
                update_case(session, owner, case_id, CaseUpdate(custom_fields={
                    "size_mm": n % 40, "seen": f"2024-{1 + n % 12:02d}-15", "exam": "FRCR 2B" if n % 3 else "none",
                    "level": "ST3", "reviewer": "teaching list"}))
            if n % 10 == 0:
                session.add(Like(case_id=case_id, user_id=viewer.id))
        quiz = quizzes.create_quiz(session, owner, "Friday", ids[:5])
        cohort = cohorts.create_cohort(session, owner, "liver", text="carcinoma")
        cohorts.freeze(session, owner, cohort, [session.get_one(Case, i) for i in ids[:3]], "v1")
        quiz_id = quiz.id
    casebank.indexer.reindex_all()
    return quiz_id


def test_an_exported_archive_imported_into_an_empty_one_answers_every_search_alike(casebank, source, tmp_path):
    before = {name: answers(casebank, name) for name in ("alice", "bob", "carol")}
    assert before["alice"][0][0] == CASES // 4 and before["alice"][8][0] == CASES
    assert before["bob"][8][0] == CASES // 2 and before["bob"][1][0] == CASES // 4  # the shared half: its pneumonias
    assert before["carol"][8][0] == 0

    out = tmp_path / "export"
    seen: list[tuple[int, int]] = []
    counts = export_archive(casebank, out, lambda done, total, unit: seen.append((done, total)))
    assert counts.cases == CASES and seen[-1] == (CASES, CASES)
    catalogue_rows = json.loads((out / "catalogue" / "users.json").read_text())
    assert all("password_hash" not in row for row in catalogue_rows)
    assert len(list((out / "cases").glob("*/*.dcm"))) == counts.instances
    again = tmp_path / "again"  # resumable: a half-finished folder is completed, not redone
    export_archive(casebank, again)
    (again / "catalogue" / "manifest.json").unlink()
    assert export_archive(casebank, again).cases_skipped == CASES

    # the target is SQLite whatever the source: from PostgreSQL this is a move between databases too
    target_settings = Settings(data=tmp_path / "target", database_url=f"sqlite:///{tmp_path / 'target.sqlite3'}",
                               dicom_port=free_port(), secret_key="test-secret")
    with Casebank.open(target_settings) as target:
        imported = import_archive(target, out)
        assert imported.rows["cases"] == CASES
        after = {name: answers(target, name) for name in ("alice", "bob", "carol")}
        for name in before:
            for request, was, now in zip(SEARCHES, before[name], after[name]):
                assert now == was, (name, request)
        with target.database.session() as session:
            assert session.scalar(select(func.count()).select_from(Like)) == CASES // 10
            assert len(session.get_one(Quiz, source).items) == 5
            assert len(session.scalars(select(CohortVersion)).one().entries) == 3
            alice = session.scalars(select(User).where(User.username == "alice")).one()
            assert not verify_password(alice.password_hash, password_of("alice"))  # a new password must be set
            for sha256 in session.scalars(select(Instance.blob_sha256)):  # every image is in the target's store
                assert target.blobs.exists(sha256)
    merge_into_an_archive_in_use(casebank, out, tmp_path, before["alice"])


def merge_into_an_archive_in_use(casebank, out, tmp_path, before) -> None:
    """The same export merged into an archive in use, where alice is known by another name."""
    with casebank.database.session() as session:
        alice_gmc = users.get_user(session, "alice").gmc
    settings = Settings(data=tmp_path / "merged", database_url=f"sqlite:///{tmp_path / 'merged.sqlite3'}",
                        dicom_port=free_port(), secret_key="test-secret")
    with Casebank.open(settings) as target:
        with target.database.session() as session:  # the same radiologist, known here by another name
            smith_id = users.add_user(session, "asmith", display_name="Smith^Alice", email="a@elsewhere.example",
                                      gmc=alice_gmc, password=password_of("asmith")).user.id
        imported = import_archive(target, out)
        assert imported.matched["users"] == 1 and imported.rows["users"] == 2  # bob and carol are new
        with target.database.session() as session:
            cases = session.scalars(select(Case)).all()
            assert len(cases) == CASES
            assert {c.folder.owner_id for c in cases} == {smith_id}  # alice's cases are asmith's now
            assert session.get_one(User, smith_id).display_name == "Smith^Alice"  # the archive's own record stands
        after = answers(target, "asmith")
        for request, was, now in zip(SEARCHES, before, after):
            assert now[0] == was[0] and sorted(t for t, _ in now[1]) == sorted(t for t, _ in was[1]), request
