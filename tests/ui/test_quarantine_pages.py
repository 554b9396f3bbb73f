"""The quarantine's admin pages and the sender's notice, on objects held by the real door check."""

from __future__ import annotations

import io
import re

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import select

from archive import quarantine
from archive.models import AuditEvent, Instance, QuarantinedObject, QuarantineState
from ingest.deid import Option, Profile, ProjectKey, deidentify
from ingest.intake import Sender

from .. import dicom_data
from .test_pages import page_login

KEY = ProjectKey(b"quarantine-pages-0123456789abcdef")
HOSPITAL = "St Elsewhere Hospital"


def leaky_ct() -> Dataset:
    """CT_small through the edge's engine, then Institution Name put back: 113112 is not declared."""
    ds = deidentify(dcmread(dicom_data.test_file("CT_small.dcm")), Profile.of(Option.CLEAN_DESCRIPTORS), KEY).dataset
    ds.InstitutionName = HOSPITAL
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()  # one key: same UIDs each time
    return ds


def encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def hold(casebank, ds: Dataset, user_id: int | None = None, ae: str = "PACS1") -> int:
    """Send ``ds`` through the intake as a STOW user (``user_id``) or an AE; the id it is held under."""
    outcome = casebank.intake.accept(encode(ds), Sender(calling_ae=ae, called_ae="CASEBANK", user_id=user_id))
    assert outcome.ok and outcome.quarantined, outcome
    with casebank.database.session() as session:
        return session.scalars(select(QuarantinedObject.id).where(
            QuarantinedObject.sop_instance_uid == str(ds.SOPInstanceUID))).one()


def actions(casebank, entry_id: int) -> list[str]:
    with casebank.database.session() as session:
        return list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_type == "quarantine", AuditEvent.object_id == str(entry_id)).order_by(AuditEvent.id)))


def test_an_object_with_institution_name_and_no_113112_is_held_and_listed(client, casebank, make_user):
    make_user("root", admin=True)
    ds = leaky_ct()
    entry_id = hold(casebank, ds)
    page_login(client, "root")
    page = client.get("/admin/quarantine")
    assert page.status_code == 200
    row = re.search(rf'<tr data-entry-id="{entry_id}">(.*?)</tr>', page.text, re.S).group(1)
    assert "AE PACS1" in row
    assert "CT Image Storage" in row  # the SOP Class in plain words
    assert "InstitutionName (0008,0080) has a value" in row and "Retain Institution Identity (113112)" in row
    assert f'href="/admin/quarantine/{entry_id}"' in row
    assert 'href="/admin/quarantine"' in client.get("/").text  # the admin's navigation links to it


def test_the_inspect_page_shows_reasons_header_preview_and_forms(client, casebank, make_user):
    make_user("root", admin=True)
    ds = leaky_ct()
    entry_id = hold(casebank, ds)
    page_login(client, "root")
    page = client.get(f"/admin/quarantine/{entry_id}").text
    assert "InstitutionName (0008,0080) has a value" in page
    flagged = re.findall(r'<tr class="flagged">(.*?)</tr>', page, re.S)
    assert len(flagged) == 1 and "(0008,0080)" in flagged[0] and HOSPITAL in flagged[0]
    assert "<code>(0008,0018)</code>" in page and str(ds.SOPInstanceUID) in page  # the header, readable
    for action in ("release", "delete"):
        form = re.search(rf'<form method="post" action="/admin/quarantine/{entry_id}/{action}">(.*?)</form>', page, re.S)
        assert form and 'name="csrf_token"' in form.group(1), action
    assert f'src="/admin/quarantine/{entry_id}/preview.png"' in page
    preview = client.get(f"/admin/quarantine/{entry_id}/preview.png")
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
    assert preview.headers["cache-control"] == "no-store"
    assert actions(casebank, entry_id) == ["quarantine.held", "quarantine.inspected", "quarantine.inspected"]


def test_non_admins_get_404_everywhere_as_for_a_missing_entry(client, casebank, make_user):
    make_user("alice")
    entry_id = hold(casebank, leaky_ct())
    page_login(client, "alice")
    missing = client.get("/admin/quarantine/999999")
    assert missing.status_code == 404
    for url in ("/admin/quarantine", f"/admin/quarantine/{entry_id}", f"/admin/quarantine/{entry_id}/preview.png",
                "/api/admin/quarantine", f"/api/admin/quarantine/{entry_id}"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert HOSPITAL not in response.text and b"PNG" not in response.content[:8], url
    assert client.get(f"/admin/quarantine/{entry_id}").text.replace(str(entry_id), "N") == missing.text.replace("999999", "N")
    for url in (f"/admin/quarantine/{entry_id}/release", f"/admin/quarantine/{entry_id}/delete",
                f"/api/admin/quarantine/{entry_id}/release"):
        assert client.post(url, follow_redirects=False).status_code == 404, url
    assert client.delete(f"/api/admin/quarantine/{entry_id}").status_code == 404
    assert 'href="/admin/quarantine"' not in client.get("/").text
    with casebank.database.session() as session:
        assert session.get(QuarantinedObject, entry_id).state is QuarantineState.HELD
    assert actions(casebank, entry_id) == ["quarantine.held"]  # nothing was inspected or decided


def test_release_files_the_object_and_delete_discards_it_both_audited(client, casebank, make_user):
    alice = make_user("alice")
    make_user("root", admin=True)
    kept, dropped = leaky_ct(), leaky_ct()
    kept_id, dropped_id = hold(casebank, kept, alice.id), hold(casebank, dropped, alice.id)
    page_login(client, "root")
    released = client.post(f"/admin/quarantine/{kept_id}/release", follow_redirects=False)
    assert released.status_code == 303 and released.headers["location"] == "/admin/quarantine"
    deleted = client.post(f"/admin/quarantine/{dropped_id}/delete", follow_redirects=False)
    assert deleted.status_code == 303
    assert client.get("/admin/quarantine").text.count("data-entry-id=") == 0
    with casebank.database.session() as session:
        assert [i.sop_instance_uid for i in session.scalars(select(Instance))] == [str(kept.SOPInstanceUID)]
        dropped_blob = session.get(QuarantinedObject, dropped_id).blob_sha256
    assert not casebank.blobs.exists(dropped_blob)
    assert actions(casebank, kept_id)[-1] == "quarantine.released"
    assert actions(casebank, dropped_id)[-1] == "quarantine.deleted"
    again = client.post(f"/admin/quarantine/{kept_id}/release", follow_redirects=False)
    assert again.status_code == 422


def test_the_sender_sees_a_notice_on_the_home_page_and_in_the_api(client, casebank, make_user):
    alice = make_user("alice")
    make_user("bob")
    make_user("root", admin=True)
    first = hold(casebank, leaky_ct(), alice.id)
    page_login(client, "alice")
    notice = re.search(r'<p class="notice held"[^>]*>(.*?)</p>', client.get("/").text, re.S).group(1)
    assert notice.startswith("1 object held at the door: InstitutionName (0008,0080) has a value")
    body = client.get("/api/me/held").json()
    assert body["notice"].startswith("1 object held at the door: InstitutionName")
    assert [h["id"] for h in body["held"]] == [first]
    assert "header" not in body["held"][0]  # the sender is told why, but does not see the object
    second = leaky_ct()
    second.ReferringPhysicianName = "Bloggs^Fred"
    hold(casebank, second, alice.id)
    notice = client.get("/api/me/held").json()["notice"]
    assert notice.startswith("2 objects held at the door: InstitutionName (0008,0080) has a value")
    assert "ReferringPhysicianName (0008,0090) has a value" in notice
    page_login(client, "bob")  # another user sees nothing of alice's
    assert 'class="notice held"' not in client.get("/").text
    assert client.get("/api/me/held").json() == {"notice": "", "held": []}
    with casebank.database.session() as session:
        root = session.scalars(select(type(alice)).where(type(alice).username == "root")).one()
        quarantine.decide(session, root, first, QuarantineState.DELETED)
    page_login(client, "alice")
    assert client.get("/api/me/held").json()["notice"].startswith("1 object held at the door: InstitutionName")
