"""The viewer's REST routes on SQLite and PostgreSQL: series in order, saving a series' display
(edit right, audited), and refusals as problem+json."""

from __future__ import annotations

from sqlalchemy import select

from archive import folders
from archive.models import AuditEvent, Case, User

from ..conftest import login
from ..search.test_archive_search import cases_arrive, teaching_case


def test_saved_display_is_what_everyone_opens_and_only_editors_save(casebank, make_user, client):
    alice, bob = make_user("alice"), make_user("bob")
    cases_arrive(casebank, [teaching_case("Lung nodule", "Nodule", modality_files=("CT_small.dcm", "MR_small.dcm"))])
    with casebank.database.session() as session:
        case_id = session.scalars(select(Case.id)).one()
        owner = session.get(User, alice.id)
        folders.grant(session, owner, folders.personal_folder(session, owner), session.get(User, bob.id), view=True)

    login(client, "alice")
    viewer = client.get(f"/api/cases/{case_id}/viewer").json()
    assert [s["modality"] for s in viewer["series"]] == ["CT", "MR"]  # no manifest or report series
    assert viewer["can_edit"] and all(len(s["instance_ids"]) == 1 for s in viewer["series"])
    assert viewer["series"][0]["display"] == {"window_center": None, "window_width": None, "crop": None}
    series_id = viewer["series"][0]["id"]
    display = {"window_center": -600.0, "window_width": 1500.0, "crop": {"x": 10.0, "y": 12.0, "width": 100.0, "height": 90.0}}
    assert client.put(f"/api/series/{series_id}/display", json=display).json() == display
    bad = client.put(f"/api/series/{series_id}/display", json={"window_center": 0, "window_width": 0})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.put("/api/series/999999/display", json={"window_center": 0, "window_width": 10}).status_code == 404

    login(client, "bob")
    seen = client.get(f"/api/cases/{case_id}/viewer").json()
    assert seen["series"][0]["display"] == display and seen["can_edit"] is False
    refused = client.put(f"/api/series/{series_id}/display", json={"window_center": 40, "window_width": 400})
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert "bob may not edit series" in refused.json()["detail"]
    with casebank.database.session() as session:
        saved = session.scalars(select(AuditEvent).where(AuditEvent.action == "series.display_saved")).all()
        assert [(e.object_id, e.detail["window_width"]) for e in saved] == [(str(series_id), 1500.0)]
