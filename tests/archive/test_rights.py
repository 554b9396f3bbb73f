"""A user sees, edits and finds only what their grants allow, on every path in."""

import pytest

from archive import cases, folders
from archive.cases import CaseUpdate
from archive.errors import NotFound, NotPermitted
from archive.models import FolderKind
from search.service import SearchRequest, search_cases

from ..conftest import login


@pytest.fixture
def world(casebank, make_user):
    """alice owns a case on 'pneumothorax' in her personal folder; bob and carol have no grants."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    with casebank.database.session() as session:
        folder = folders.personal_folder(session, alice)
        case = cases.create_case(
            session, alice, folder.id,
            CaseUpdate(title="Tension pneumothorax", findings="Mediastinal shift to the left"),
        )
    return {"alice": alice, "bob": bob, "carol": carol, "folder_id": folder.id, "case_id": case.id}


def test_without_a_grant_a_user_cannot_read_edit_or_search(casebank, world):
    with casebank.database.session() as session:  # what one may not see answers as missing
        with pytest.raises(NotFound, match="case .* does not exist"):
            cases.get_case(session, world["bob"], world["case_id"])
        with pytest.raises(NotFound, match="case .* does not exist"):
            cases.update_case(session, world["bob"], world["case_id"], CaseUpdate(title="mine now"))
        with pytest.raises(NotFound, match="folder .* does not exist"):
            cases.list_cases(session, world["bob"], world["folder_id"])
        assert search_cases(session, casebank.index, world["bob"], SearchRequest("pneumothorax")).total == 0
        assert search_cases(session, casebank.index, world["alice"], SearchRequest("pneumothorax")).total == 1


def test_view_grant_allows_reading_and_searching_but_not_editing(casebank, world):
    with casebank.database.session() as session:
        folder = session.get(folders.Folder, world["folder_id"])
        folders.grant(session, world["alice"], folder, world["bob"], view=True)
    with casebank.database.session() as session:
        assert cases.get_case(session, world["bob"], world["case_id"]).title == "Tension pneumothorax"
        assert search_cases(session, casebank.index, world["bob"], SearchRequest("pneumothorax")).total == 1
        with pytest.raises(NotPermitted):
            cases.update_case(session, world["bob"], world["case_id"], CaseUpdate(title="x"))
        assert search_cases(session, casebank.index, world["carol"], SearchRequest("pneumothorax")).total == 0


def test_edit_grant_allows_editing_and_the_index_follows(casebank, world):
    with casebank.database.session() as session:
        folder = session.get(folders.Folder, world["folder_id"])
        folders.grant(session, world["alice"], folder, world["bob"], edit=True)
    with casebank.database.session() as session:
        cases.update_case(session, world["bob"], world["case_id"], CaseUpdate(diagnosis="Haemothorax"))
    with casebank.database.session() as session:
        assert search_cases(session, casebank.index, world["alice"], SearchRequest("haemothorax")).total == 1


def test_rights_on_a_folder_hold_on_its_sub_folders(casebank, world, make_user):
    admin = make_user("root", admin=True)
    with casebank.database.session() as session:
        ldm = folders.create_folder(session, admin, "LDM", FolderKind.LDM)
        chest = folders.create_folder(session, admin, "Chest", FolderKind.LDM, parent=ldm)
        case = cases.create_case(session, admin, chest.id, CaseUpdate(title="Sarcoidosis"))
        folders.grant(session, admin, ldm, world["bob"], view=True)
    with casebank.database.session() as session:
        assert cases.get_case(session, world["bob"], case.id).title == "Sarcoidosis"
        assert folders.folder_path(session, chest) == "/LDM/Chest"
        with pytest.raises(NotFound):
            cases.get_case(session, world["carol"], case.id)


def test_only_editors_may_grant(casebank, world):
    with casebank.database.session() as session:
        folder = session.get(folders.Folder, world["folder_id"])
        with pytest.raises(NotFound):  # bob cannot even see it
            folders.grant(session, world["bob"], folder, world["bob"], view=True, edit=True)
        folders.grant(session, world["alice"], folder, world["bob"], view=True)
        with pytest.raises(NotPermitted):  # now he sees it, but may not edit it
            folders.grant(session, world["bob"], folder, world["bob"], view=True, edit=True)


def test_admins_see_every_folder(casebank, world, make_user):
    admin = make_user("root", admin=True)
    with casebank.database.session() as session:
        assert cases.get_case(session, admin, world["case_id"]).title == "Tension pneumothorax"
        assert world["folder_id"] in folders.visible_folder_ids(session, admin)


def test_rest_api_enforces_the_same_rights(client, world):
    login(client, "bob")
    case_url = f"/api/cases/{world['case_id']}"
    for response in (
        client.get(case_url),
        client.patch(case_url, json={"title": "mine now"}),
        client.get(f"/api/folders/{world['folder_id']}/cases"),
    ):
        assert response.status_code == 404  # the same answer as for a missing case or folder
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"].endswith("does not exist") and "alice" not in response.text
    assert client.get("/api/search", params={"q": "pneumothorax"}).json()["total"] == 0
    assert world["folder_id"] not in {f["id"] for f in client.get("/api/folders").json()}
