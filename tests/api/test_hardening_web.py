"""Web hardening against the real app: what one may not see answers exactly like what does not
exist; CSRF tokens and the Origin check on cookie-authenticated writes; security headers;
bounded text fields; owner-only data files."""

from __future__ import annotations

import re
import stat

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.runtime import Casebank
from archive import case_extras, cases, folders, users
from archive.cases import CaseUpdate
from archive.models import FolderGrant, Instance, Series, Study

from ..conftest import login, password_of

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
MISSING = 987654


@pytest.fixture
def alices(casebank: Casebank, make_user) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """alice's folder with a case, a study, a series, an instance and an attachment; carol sees none."""
    alice, _carol = make_user("alice"), make_user("carol")
    with casebank.database.session() as session:
        folder = folders.personal_folder(session, alice)
        case = cases.create_case(session, alice, folder.id, CaseUpdate(title="Secret case of alice"))
        study = Study(case_id=case.id, study_instance_uid="1.2.3")
        session.add(study)
        session.flush()
        series = Series(study_id=study.id, series_instance_uid="1.2.3.4", modality="CT")
        session.add(series)
        session.flush()
        instance = Instance(series_id=series.id, sop_instance_uid="1.2.3.4.5", sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                            transfer_syntax_uid="1.2.840.10008.1.2.1", size_bytes=1, blob_sha256="0" * 64)
        session.add(instance)
        session.flush()
        attachment = case_extras.add_attachment(session, casebank.blobs, alice, case.id, "h.png", "image/png", PNG)
        carols = folders.personal_folder(session, users.get_user(session, "carol"))
        return {"folder": folder.id, "case": case.id, "series": series.id, "instance": instance.id,
                "attachment": attachment.id, "carols_folder": carols.id}


HTML = {"accept": "text/html"}
# (method, path with {id}, the kind of object the path names, request arguments)
PROBES = [
    ("GET", "/api/folders/{id}", "folder", {}),
    ("GET", "/api/folders/{id}/cases", "folder", {}),
    ("GET", "/folders/{id}", "folder", {"headers": HTML}),
    ("POST", "/folders/{id}/shares", "folder", {"data": {"username": "carol", "right": "edit"}, "headers": HTML}),
    ("POST", "/folders/{id}/shares", "folder", {"data": {"username": "nobody-at-all"}, "headers": HTML}),
    ("POST", "/folders/{id}/shares/alice/revoke", "folder", {"headers": HTML}),
    ("POST", "/folders/{id}/subfolders", "folder", {"data": {"name": "Mine"}, "headers": HTML}),
    ("GET", "/api/cases/{id}", "case", {}),
    ("PATCH", "/api/cases/{id}", "case", {"json": {"title": "taken over"}}),
    ("GET", "/cases/{id}", "case", {"headers": HTML}),
    ("GET", "/cases/{id}", "case", {}),
    ("POST", "/cases/{id}", "case", {"data": {"title": "taken over"}, "headers": HTML}),
    ("POST", "/cases/{id}/custom", "case", {"data": {"cf_x": "1"}, "headers": HTML}),
    ("POST", "/cases/{id}/codes/remove", "case", {"data": {"system": "ICD10", "code": "J93"}}),
    ("GET", "/api/cases/{id}/viewer", "case", {}),
    ("GET", "/api/cases/{id}/likes", "case", {}),
    ("PUT", "/api/cases/{id}/like", "case", {}),
    ("POST", "/cases/{id}/like", "case", {"headers": HTML}),
    ("GET", "/api/cases/{id}/attachments", "case", {}),
    ("POST", "/api/cases/{id}/attachments", "case", {"files": {"file": ("x.png", PNG, "image/png")}}),
    ("POST", "/cases/{id}/attachments", "case", {"files": {"file": ("x.png", PNG, "image/png")}, "headers": HTML}),
    ("GET", "/api/cases/{id}/history", "case", {}),
    ("POST", "/cases/{id}/copy", "case", {"data": {"folder_id": "CAROLS"}}),
    ("GET", "/api/instances/{id}/rendered", "instance", {}),
    ("GET", "/api/instances/{id}/dicom", "instance", {}),
    ("PUT", "/api/series/{id}/display", "series", {"json": {"window_center": 40, "window_width": 400}}),
    ("GET", "/api/attachments/{id}", "attachment", {}),
    ("DELETE", "/api/attachments/{id}", "attachment", {}),
    ("POST", "/attachments/{id}/remove", "attachment", {"headers": HTML}),
]


def _normalised(text: str, object_id: int) -> str:
    """The answer with the asked-for ID replaced, so two IDs' answers can be compared."""
    return re.sub(rf"(?<=[ /]){object_id}(?!\d)", "N", text)


def _ask(client: TestClient, method: str, path: str, object_id: int, carols_folder: int, kwargs: dict) -> tuple[int, str, str]:
    kwargs = dict(kwargs)
    if "data" in kwargs:
        kwargs["data"] = {k: (str(carols_folder) if v == "CAROLS" else v) for k, v in kwargs["data"].items()}
    response = client.request(method, path.format(id=object_id), follow_redirects=False, **kwargs)
    return response.status_code, response.headers.get("content-type", ""), _normalised(response.text, object_id)


@pytest.mark.parametrize(("method", "path", "kind", "kwargs"), PROBES, ids=[f"{m} {p}" for m, p, _, _ in PROBES])
def test_what_one_may_not_see_answers_exactly_like_what_does_not_exist(client, alices, method, path, kind, kwargs):
    login(client, "carol")
    invisible = _ask(client, method, path, alices[kind], alices["carols_folder"], kwargs)
    missing = _ask(client, method, path, MISSING, alices["carols_folder"], kwargs)
    assert invisible[0] == 404, invisible
    assert invisible == missing
    assert "alice" not in invisible[2] and "Secret" not in invisible[2]


def test_a_viewer_is_refused_edits_with_403_naming_no_other_user(client, casebank, alices):
    with casebank.database.session() as session:
        alice, carol = users.get_user(session, "alice"), users.get_user(session, "carol")
        folders.grant(session, alice, folders.personal_folder(session, alice), carol, view=True)
    login(client, "carol")
    assert client.get(f"/api/cases/{alices['case']}").status_code == 200
    for response in (
        client.patch(f"/api/cases/{alices['case']}", json={"title": "taken over"}),
        client.put(f"/api/series/{alices['series']}/display", json={"window_center": 40, "window_width": 400}),
        client.delete(f"/api/attachments/{alices['attachment']}"),
    ):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "alice" not in response.json()["detail"] and "may not edit" in response.json()["detail"]


# --- CSRF ----------------------------------------------------------------------------------------


def _token_from(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def _grants(casebank: Casebank, folder_id: int) -> int:
    with casebank.database.session() as session:
        return len(session.scalars(select(FolderGrant).where(FolderGrant.folder_id == folder_id)).all())


def test_cookie_authenticated_forms_need_the_pages_token_and_the_same_origin(casebank, alices):
    with TestClient(create_app(casebank), base_url="http://archive.test") as browser:  # no automatic token
        page = browser.get("/login").text
        refused_login = browser.post("/login", data={"username": "alice", "password": password_of("alice")})
        assert refused_login.status_code == 403
        done = browser.post("/login", data={"username": "alice", "password": password_of("alice"),
                                            "csrf_token": _token_from(page)}, follow_redirects=False)
        assert done.status_code == 303
        share = f"/folders/{alices['folder']}/shares"
        form = {"username": "carol", "right": "edit", "send": "true"}
        assert browser.post(share, data=form).status_code == 403
        assert browser.post(share, data={**form, "csrf_token": "forged"}).status_code == 403
        token = _token_from(browser.get(f"/folders/{alices['folder']}").text)
        other_site = browser.post(share, data={**form, "csrf_token": token}, headers={"origin": "http://127.0.0.1:9999"})
        assert other_site.status_code == 403 and "cross-origin" in other_site.json()["detail"]
        assert _grants(casebank, alices["folder"]) == 0
        own = browser.post(share, data={**form, "csrf_token": token}, headers={"origin": "http://archive.test"},
                           follow_redirects=False)
        assert own.status_code == 303 and _grants(casebank, alices["folder"]) == 1


def test_json_writes_need_the_token_header_but_bearer_tokens_do_not(casebank, alices):
    with TestClient(create_app(casebank)) as browser:
        session = browser.post("/api/session", json={"username": "alice", "password": password_of("alice")})
        url = f"/api/cases/{alices['case']}"
        refused = browser.patch(url, json={"title": "forged"})
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert browser.patch(url, json={"title": "mine"}, headers={"X-CSRF-Token": session.json()["csrf_token"]}).status_code == 200
        meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', browser.get(f"/cases/{alices['case']}").text)
        assert meta and meta.group(1) == session.json()["csrf_token"]  # what the viewer's fetch sends
    with casebank.database.session() as db:
        bearer = users.issue_token(db, users.get_user(db, "alice"))
    with TestClient(create_app(casebank)) as script:
        assert script.patch(url, json={"title": "by script"}, headers={"Authorization": f"Bearer {bearer}"}).status_code == 200


def test_every_post_form_of_the_pages_carries_the_token(client, alices):
    login(client, "alice")
    for page in (client.get(f"/folders/{alices['folder']}").text, client.get(f"/cases/{alices['case']}").text,
                 client.get("/").text):
        forms = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', page, flags=re.DOTALL)
        assert forms and all('name="csrf_token"' in f for f in forms)


def test_the_edge_pages_need_the_token_too(tmp_path):
    from api.edge_app import create_edge_app
    from ingest.edge.outbox import Destination
    from ingest.edge.service import Edge, EdgeConfig

    from ..peers import free_port

    edge = Edge(EdgeConfig(data=tmp_path / "edge", archive=Destination("ARCHIVE", "127.0.0.1", free_port())))
    edge.users.add("ajones", display_name="Jones^Ann", gmc="7000001", password="pw")
    with TestClient(create_edge_app(edge)) as browser:
        page = browser.get("/login").text
        assert browser.post("/login", data={"username": "ajones", "password": "pw"}).status_code == 403
        done = browser.post("/login", data={"username": "ajones", "password": "pw", "csrf_token": _token_from(page)},
                            follow_redirects=False)
        assert done.status_code == 303
        assert browser.post("/logout", headers={"origin": "http://elsewhere.example"}).status_code == 403


# --- Headers, field sizes, files -----------------------------------------------------------------


def test_every_answer_carries_the_security_headers(client):
    first = client.get("/login")
    assert "secure" not in first.headers["set-cookie"].lower()  # plain http: a Secure cookie would never come back
    for response in (first, client.get("/api/me"), client.get("/static/casebank.css"), client.get("/api/cases/1")):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "worker-src 'self' blob:" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in response.headers


def test_https_base_url_adds_hsts_and_secure_cookies(casebank):
    casebank.settings.base_url = "https://casebank.example"
    with TestClient(create_app(casebank), base_url="https://casebank.example") as browser:
        response = browser.get("/login")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert "; secure" in response.headers["set-cookie"].lower()


def test_text_fields_are_bounded(client, alices):
    login(client, "alice")
    url = f"/api/cases/{alices['case']}"
    for body in ({"title": "t" * 501}, {"findings": "f" * 20_001}, {"keywords": ["k"] * 51},
                 {"keywords": ["k" * 101]}):
        response = client.patch(url, json=body)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json", body
    assert client.patch(url, json={"title": "t" * 500, "findings": "f" * 20_000}).status_code == 200
    form = client.post(f"/cases/{alices['case']}", data={"title": "t" * 501})
    assert form.status_code == 422 and form.headers["content-type"] == "application/problem+json"
    keywords = client.post(f"/cases/{alices['case']}", data={"keywords": ",".join(["k"] * 51)})
    assert keywords.status_code == 422


def test_the_database_and_the_secret_key_are_owner_only(casebank, settings):
    casebank.settings.secret_key = None  # made and kept under CASEBANK_DATA
    create_app(casebank)
    assert stat.S_IMODE((settings.data / "secret_key").stat().st_mode) == 0o600
    if settings.resolved_database_url().startswith("sqlite"):  # PostgreSQL keeps its own files
        database = settings.data.parent / "casebank.sqlite3"
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
