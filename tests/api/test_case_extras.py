"""Likes, attachments and a case's audit trail, with the case's rights."""

from __future__ import annotations

import io

from PIL import Image

from archive import cases, folders, users
from archive.cases import CaseUpdate
from search.index import SearchQuery

from ..conftest import login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (180, 60, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


def a_case(casebank, owner: str, viewer: str | None = None) -> int:
    with casebank.database.session() as session:
        user = users.get_user(session, owner)
        folder = folders.personal_folder(session, user)
        case = cases.create_case(session, user, folder.id, CaseUpdate(title="Osteoid osteoma"))
        if viewer:
            folders.grant(session, user, folder, users.get_user(session, viewer), view=True)
        return case.id


def test_likes_count_once_per_user_and_feed_the_likes_sort(client, casebank, make_user):
    make_user("alice"), make_user("bob")
    case_id = a_case(casebank, "alice", viewer="bob")
    login(client, "alice")
    assert client.put(f"/api/cases/{case_id}/like").json() == {"count": 1, "liked": True}
    assert client.put(f"/api/cases/{case_id}/like").json() == {"count": 1, "liked": True}  # idempotent
    login(client, "bob")
    assert client.put(f"/api/cases/{case_id}/like").json() == {"count": 2, "liked": True}
    assert client.delete(f"/api/cases/{case_id}/like").json() == {"count": 1, "liked": False}
    assert client.get(f"/api/cases/{case_id}/likes").json() == {"count": 1, "liked": False}
    with casebank.database.session() as session:
        folder_ids = folders.visible_folder_ids(session, users.get_user(session, "alice"))
    [document] = casebank.indexer.documents({case_id})
    assert document.likes == 1
    assert casebank.index.search(SearchQuery(frozenset(folder_ids), "", sort="likes")).hits[0].case_id == case_id


def test_editors_attach_jpeg_and_pdf_viewers_read_them_and_other_files_are_refused(client, casebank, make_user):
    make_user("alice"), make_user("bob"), make_user("carol")
    case_id = a_case(casebank, "alice", viewer="bob")
    login(client, "alice")
    histology = client.post(f"/api/cases/{case_id}/attachments", files={"file": ("histology.jpg", jpeg(), "image/jpeg")})
    assert histology.status_code == 201 and histology.json()["media_type"] == "image/jpeg"
    paper = client.post(f"/api/cases/{case_id}/attachments", files={"file": ("Smith 2019 review.pdf", PDF, "application/pdf")})
    assert paper.status_code == 201
    script = client.post(f"/api/cases/{case_id}/attachments", files={"file": ("x.jpg", b"<script>", "image/jpeg")})
    assert script.status_code == 422 and "JPEG, PNG or PDF" in script.json()["detail"]

    login(client, "bob")
    listed = client.get(f"/api/cases/{case_id}/attachments").json()
    assert [a["filename"] for a in listed] == ["histology.jpg", "Smith 2019 review.pdf"]
    pdf = client.get(listed[1]["url"])
    assert pdf.content == PDF and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert client.post(f"/api/cases/{case_id}/attachments", files={"file": ("y.pdf", PDF, "application/pdf")}).status_code == 403
    assert client.delete(listed[0]["url"]).status_code == 403
    assert client.get(f"/api/cases/{case_id}/history").status_code == 403  # the trail is for editors

    login(client, "carol")
    assert client.get(listed[0]["url"]).status_code == 404

    login(client, "alice")
    assert client.delete(listed[0]["url"]).status_code == 204
    history = client.get(f"/api/cases/{case_id}/history").json()
    assert [h["action"] for h in history] == [
        "case.attachment_removed", "case.attachment_added", "case.attachment_added", "case.updated", "case.created"]
    assert history[0]["actor"] == "alice" and history[0]["detail"]["filename"] == "histology.jpg"
