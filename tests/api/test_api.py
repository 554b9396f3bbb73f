"""The REST API: health, login, tokens, cases, search and problem+json errors."""

from io import BytesIO

import numpy as np
from PIL import Image
from pynetdicom import AE, StoragePresentationContexts

from archive import cases, folders, users
from archive.cases import CaseUpdate

from .. import dicom_data
from ..conftest import login


def make_case(casebank, owner, **content):
    with casebank.database.session() as session:
        user = users.get_user(session, owner)
        folder = folders.personal_folder(session, user)
        return cases.create_case(session, user, folder.id, CaseUpdate(**content)).id


def test_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_openapi_docs_are_served(client):
    assert client.get("/api/docs").status_code == 200
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/search", "/api/cases/{case_id}", "/api/folders", "/api/health"} <= set(paths)


def test_requests_without_credentials_get_401_problem_json(client):
    response = client.get("/api/folders")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and "casebank token" in body["detail"]


def test_wrong_password_is_refused(client, make_user):
    make_user("alice")
    response = client.post("/api/session", json={"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown user name or wrong password"


def test_session_login_and_logout(client, make_user):
    make_user("alice")
    login(client, "alice")
    assert client.get("/api/me").json()["username"] == "alice"
    assert client.delete("/api/session").status_code == 204
    assert client.get("/api/me").status_code == 401


def test_bearer_token_for_scripts(client, casebank, make_user):
    make_user("alice")
    with casebank.database.session() as session:
        token = users.issue_token(session, users.get_user(session, "alice"))
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "alice"
    bad = client.get("/api/me", headers={"Authorization": "Bearer cb_not-a-token"})
    assert bad.status_code == 401 and bad.json()["detail"] == "the bearer token is not valid"


def test_folders_list_my_personal_folder_with_full_rights(client, make_user):
    make_user("alice")
    login(client, "alice")
    [folder] = client.get("/api/folders").json()
    assert folder["path"] == "/alice" and folder["kind"] == "personal"
    assert folder["rights"] == {"view": True, "edit": True, "send": True}


def test_read_and_update_a_case_then_find_it(client, casebank, make_user):
    make_user("alice")
    case_id = make_case(casebank, "alice", title="Untitled")
    login(client, "alice")
    response = client.patch(
        f"/api/cases/{case_id}",
        json={
            "title": "Hepatocellular carcinoma in cirrhosis",
            "findings": "Arterially enhancing lesion with washout",
            "keywords": ["liver", "LI-RADS"],
            "codes": [{"system": "ICD-10", "code": "C22.0", "display": "Liver cell carcinoma"}],
        },
    )
    assert response.status_code == 200, response.text
    case = client.get(f"/api/cases/{case_id}").json()
    assert case["title"] == "Hepatocellular carcinoma in cirrhosis"
    assert case["keywords"] == ["liver", "LI-RADS"]
    assert case["codes"] == [{"system": "ICD-10", "code": "C22.0", "display": "Liver cell carcinoma"}]
    assert case["folder"] == {"id": case["folder"]["id"], "path": "/alice"}
    assert case["author"] == {"name": "Dr Alice", "gmc": "7000001"}
    found = client.get("/api/search", params={"q": "washout"}).json()
    assert found == {
        "total": 1, "page": 1, "size": 20, "facets": {},
        "hits": [{"case_id": case_id, "title": "Hepatocellular carcinoma in cirrhosis", "folder": case["folder"],
                  "snippet": "Arterially enhancing lesion with <mark>washout</mark>"}],
    }
    assert client.get("/api/search", params={"q": "carcinomas"}).json()["total"] == 1  # stemmed


def test_search_pages_through_hits(client, casebank, make_user):
    make_user("alice")
    ids = {make_case(casebank, "alice", title=f"Pulmonary embolism {n}") for n in range(5)}
    login(client, "alice")
    first = client.get("/api/search", params={"q": "embolism", "size": 3}).json()
    second = client.get("/api/search", params={"q": "embolism", "size": 3, "page": 2}).json()
    assert first["total"] == second["total"] == 5
    assert {h["case_id"] for h in first["hits"] + second["hits"]} == ids


def test_unknown_case_and_bad_input_are_problem_json(client, make_user):
    make_user("alice")
    login(client, "alice")
    missing = client.get("/api/cases/999")
    assert missing.status_code == 404 and missing.json()["detail"] == "case 999 does not exist"
    invalid = client.get("/api/cases/not-a-number")
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert "case_id" in invalid.json()["detail"]


def test_rendered_image_of_a_received_instance(client, casebank, live, make_user):
    make_user("alice")
    with casebank.database.session() as session:
        users.bind_ae(session, "PACS1", users.get_user(session, "alice"))
    ae = AE(ae_title="PACS1")
    ae.requested_contexts = StoragePresentationContexts[:100]
    assoc = ae.associate("127.0.0.1", live.dicom_port, ae_title=live.ae_title)
    assert assoc.send_c_store(dicom_data.study(["CT_small.dcm"])[0]).Status == 0
    assoc.release()
    login(client, "alice")
    [hit] = client.get("/api/search", params={"q": ""}).json()["hits"]
    case = client.get(f"/api/cases/{hit['case_id']}").json()
    [instance_id] = case["studies"][0]["series"][0]["instance_ids"]
    png = client.get(f"/api/instances/{instance_id}/rendered")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(BytesIO(png.content))
    assert image.size == (128, 128)
    assert len(np.unique(np.asarray(image))) > 50  # a real picture, not a blank square
