"""The folder page: share dialog (view / edit / send, senders by GMC), sub-folders, storage limits."""

from __future__ import annotations

from sqlalchemy import select

from archive import folders, users
from archive.models import AuditEvent, Folder, FolderKind

from .test_pages import make_case, page_login


def folder_id_of(casebank, username: str) -> int:
    with casebank.database.session() as session:
        return folders.personal_folder(session, users.get_user(session, username)).id


def test_sharing_a_folder_lets_one_user_view_but_not_edit_and_shows_nothing_to_a_third(client, casebank, make_user):
    make_user("alice"), make_user("bob"), make_user("carol")
    case_id = make_case(casebank, "alice", title="Tension pneumothorax")
    folder_id = folder_id_of(casebank, "alice")

    page_login(client, "alice")
    page = client.get(f"/folders/{folder_id}").text
    assert "Tension pneumothorax" in page and "Not shared with anyone yet." in page
    shared = client.post(f"/folders/{folder_id}/shares", data={"username": "bob", "right": "view"}, follow_redirects=False)
    assert shared.status_code == 303
    assert '<tr data-user="bob"><td>Dr Bob <small>(bob)</small></td>\n        <td>view</td>' in client.get(f"/folders/{folder_id}").text

    page_login(client, "bob")
    assert f'href="/folders/{folder_id}"' in client.get("/").text
    bob_view = client.get(f"/folders/{folder_id}")
    assert bob_view.status_code == 200 and "Tension pneumothorax" in bob_view.text
    assert 'id="share"' not in bob_view.text  # no share dialog without the edit right
    assert client.get(f"/cases/{case_id}").status_code == 200
    edit = client.post(f"/cases/{case_id}", data={"title": "Changed by bob"}, headers={"accept": "text/html"})
    assert edit.status_code == 403
    assert client.post(f"/folders/{folder_id}/shares", data={"username": "carol"}, headers={"accept": "text/html"}).status_code == 403

    page_login(client, "carol")
    assert "Tension pneumothorax" not in client.get("/").text
    assert client.get(f"/folders/{folder_id}", headers={"accept": "text/html"}).status_code in (403, 404)
    assert client.get(f"/cases/{case_id}", headers={"accept": "text/html"}).status_code == 404

    page_login(client, "alice")
    client.post(f"/folders/{folder_id}/shares/bob/revoke")
    page_login(client, "bob")
    assert client.get(f"/cases/{case_id}", headers={"accept": "text/html"}).status_code == 404
    with casebank.database.session() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.object_type == "folder"))]
    assert "folder.granted" in actions and "folder.revoked" in actions


def test_editors_make_sub_folders_and_restrict_senders_by_gmc(client, casebank, make_user):
    make_user("alice")
    folder_id = folder_id_of(casebank, "alice")
    page_login(client, "alice")
    made = client.post(f"/folders/{folder_id}/subfolders", data={"name": "Chest", "kind": "ldm"}, follow_redirects=False)
    child = int(made.headers["location"].rsplit("/", 1)[1])
    assert "Chest" in client.get(f"/folders/{folder_id}").text and "/alice/Chest" in client.get("/").text
    client.post(f"/folders/{child}/senders", data={"gmc": "1234567, 7654321"})
    assert "1234567, 7654321" in client.get(f"/folders/{child}").text
    with casebank.database.session() as session:
        assert folders.allowed_senders(session, session.get(Folder, child)) == ["1234567", "7654321"]
    bad = client.post(f"/folders/{child}/senders", data={"gmc": "12ab"}, headers={"accept": "text/html"})
    assert bad.status_code == 422 and "GMC numbers have 7 digits: 12ab" in bad.text


def test_only_admins_set_storage_limits_and_everyone_sees_usage(client, casebank, make_user):
    make_user("alice"), make_user("root", admin=True)
    folder_id = folder_id_of(casebank, "alice")
    page_login(client, "alice")
    assert "MB used" in client.get(f"/folders/{folder_id}").text and 'id="limit"' not in client.get(f"/folders/{folder_id}").text
    refused = client.post(f"/folders/{folder_id}/limit", data={"limit_mb": "10"}, headers={"accept": "text/html"})
    assert refused.status_code == 403
    page_login(client, "root")
    client.post(f"/folders/{folder_id}/limit", data={"limit_mb": "10", "hard": "true"})
    assert "of 10 MB (hard limit)" in client.get(f"/folders/{folder_id}").text
    with casebank.database.session() as session:
        folder = session.get(Folder, folder_id)
        assert folder.storage_limit_bytes == 10 * 1024 * 1024 and folder.limit_is_hard


def test_catalogue_fields_defined_on_the_folder_page_are_filled_on_the_case_page(client, casebank, make_user):
    make_user("alice"), make_user("bob")
    folder_id = folder_id_of(casebank, "alice")
    case_id = make_case(casebank, "alice", title="Renal mass")
    page_login(client, "alice")
    client.post(f"/folders/{folder_id}/catalogue", data={
        "name": ["grade", "size_mm", ""], "label": ["Level", "", ""], "type": ["keyword", "number", "date"],
        "choices": ["basic, advanced", "", ""]})
    assert 'value="grade"' in client.get(f"/folders/{folder_id}").text
    page = client.get(f"/cases/{case_id}").text
    assert '<select name="cf_grade">' in page and 'name="cf_size_mm" inputmode="decimal"' in page
    client.post(f"/cases/{case_id}/custom", data={"cf_grade": "advanced", "cf_size_mm": "42"})
    assert client.get(f"/api/cases/{case_id}").json()["custom_fields"] == {"grade": "advanced", "size_mm": 42}
    bad = client.post(f"/cases/{case_id}/custom", data={"cf_size_mm": "large"}, headers={"accept": "text/html"})
    assert bad.status_code == 422 and "size_mm: &#39;large&#39; is not a number" in bad.text
    found = client.get("/api/search", params={"filter": ["custom.grade:advanced", "custom.size_mm:40..50"]}).json()
    assert [h["case_id"] for h in found["hits"]] == [case_id]
    search_page = client.get("/search").text
    assert 'data-facet="custom.grade"' in search_page and "<h2>Level</h2>" in search_page
    bad_field = client.post(f"/folders/{folder_id}/catalogue", data={"name": ["Bad Name"], "type": ["keyword"]},
                            headers={"accept": "text/html"})
    assert bad_field.status_code == 422


def test_a_case_is_copied_with_its_images_into_an_exam_folder(client, casebank, make_user):
    from pydicom import dcmread
    from sqlalchemy import select as sa_select

    from archive.models import Case

    from ..search.test_archive_search import cases_arrive, teaching_case

    make_user("alice"), make_user("root", admin=True)
    cases_arrive(casebank, [teaching_case("Pneumatosis", "Pneumatosis intestinalis")])
    with casebank.database.session() as session:
        root = users.get_user(session, "root")
        exam = folders.create_folder(session, root, "Exam 2027", FolderKind.EXAM)
        folders.grant(session, root, exam, users.get_user(session, "alice"), edit=True)
        exam_id = exam.id
        [original] = session.scalars(sa_select(Case)).all()
        original_id = original.id
    page_login(client, "alice")
    assert "Exam 2027" in client.get(f"/cases/{original_id}").text
    copied = client.post(f"/cases/{original_id}/copy", data={"folder_id": str(exam_id)}, follow_redirects=False)
    copy_id = int(copied.headers["location"].rsplit("/", 1)[1])
    assert copy_id != original_id and "Copied from /alice" in client.get(f"/cases/{copy_id}").text
    with casebank.database.session() as session:
        original, copy = session.get(Case, original_id), session.get(Case, copy_id)
        assert copy.folder_id == exam_id and copy.title == original.title and copy.diagnosis == original.diagnosis
        old = {i.sop_instance_uid for s in original.studies for se in s.series for i in se.instances}
        new = [i for s in copy.studies for se in s.series for i in se.instances]
        assert len(new) == len(old) and not old & {i.sop_instance_uid for i in new}
        copied_objects = [dcmread(casebank.blobs.path(i.blob_sha256)) for i in new]
        new_uids = {str(ds.SOPInstanceUID) for ds in copied_objects}
    manifest = next(ds for ds in copied_objects if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59")
    referenced = {str(item.ReferencedSOPInstanceUID) for study in manifest.CurrentRequestedProcedureEvidenceSequence
                  for series in study.ReferencedSeriesSequence for item in series.ReferencedSOPSequence}
    assert referenced and referenced <= new_uids  # the copy's manifest names the copy's objects
    refused = client.post(f"/cases/{original_id}/copy", data={"folder_id": str(folder_id_of(casebank, "root"))},
                          headers={"accept": "text/html"})
    assert refused.status_code in (403, 404)
