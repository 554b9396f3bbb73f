import pytest
from sqlalchemy import select

from archive import folders, quota
from archive.errors import NotPermitted
from archive.mail import OutgoingMail
from archive.models import AuditEvent


def test_only_admins_set_limits_and_it_is_audited(casebank, make_user):
    alice, root = make_user("alice"), make_user("root", admin=True)
    with casebank.database.session() as session:
        home = folders.personal_folder(session, alice)
        with pytest.raises(NotPermitted, match="only admins"):
            quota.set_limit(session, alice, home, 10_000_000)
        quota.set_limit(session, root, home, 10_000_000, hard=True)
    with casebank.database.session() as session:
        home = folders.personal_folder(session, alice)
        assert (home.storage_limit_bytes, home.limit_is_hard) == (10_000_000, True)
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "folder.limit_set")).one()
        assert event.actor == "user:root" and event.detail == {"limit": 10_000_000, "hard": True}


def test_the_notice_is_sent_once_and_re_armed_below_the_limit(casebank, make_user, monkeypatch):
    """Usage is set directly here; tests/ingest/test_tce_peers.py crosses a limit with real stores."""
    alice = make_user("alice")
    sent: list[OutgoingMail] = []
    casebank.database.send_mail = sent.extend
    with casebank.database.session() as session:
        home = folders.personal_folder(session, alice)
        quota.set_limit(session, "cli", home, 1)
    usage = {"bytes": 10}
    monkeypatch.setattr(quota, "folder_usage", lambda _session, _folder_id: usage["bytes"])
    for _ in range(3):
        with casebank.database.session() as session:
            quota.check_limit(session, folders.personal_folder(session, alice))
    assert len(sent) == 1 and sent[0].to == "alice@hospital.example"
    usage["bytes"] = 0
    with casebank.database.session() as session:
        quota.check_limit(session, folders.personal_folder(session, alice))
    usage["bytes"] = 10
    with casebank.database.session() as session:
        quota.check_limit(session, folders.personal_folder(session, alice))
    assert len(sent) == 2
