import pytest
from sqlalchemy import select

from archive import audit, users
from archive.errors import InvalidInput, NotAuthenticated
from archive.folders import folder_path, personal_folder
from archive.models import AuditEvent, FolderKind


def test_creating_a_user_creates_their_personal_folder(casebank, make_user):
    alice = make_user("alice")
    with casebank.database.session() as session:
        folder = personal_folder(session, alice)
        assert folder.kind is FolderKind.PERSONAL
        assert folder.owner_id == alice.id
        assert folder_path(session, folder) == "/alice"


def test_gmc_number_and_username_are_unique(casebank, make_user):
    make_user("alice")
    with casebank.database.session() as session:
        alice_gmc = users.get_user(session, "alice").gmc
    with pytest.raises(InvalidInput, match="GMC number"):
        with casebank.database.session() as session:
            users.add_user(session, "alicia", email="a@x.org", gmc=alice_gmc)
    with pytest.raises(InvalidInput, match="already exists"):
        with casebank.database.session() as session:
            users.add_user(session, "alice", email="a@x.org", gmc="999")


def test_passwords_are_argon2_hashed_and_verified(casebank, make_user):
    alice = make_user("alice")
    assert alice.password_hash.startswith("$argon2id$")
    with casebank.database.session() as session:
        assert users.authenticate(session, "alice", "pw-alice-for-tests-only").id == alice.id
        with pytest.raises(NotAuthenticated):
            users.authenticate(session, "alice", "wrong")


def test_generated_password_is_returned_once_and_works(casebank):
    with casebank.database.session() as session:
        created = users.add_user(session, "gen", email="g@x.org", gmc="42")
    assert created.generated_password
    with casebank.database.session() as session:
        users.authenticate(session, "gen", created.generated_password)


def test_bearer_tokens_are_stored_hashed(casebank, make_user):
    alice = make_user("alice")
    with casebank.database.session() as session:
        token = users.issue_token(session, session.merge(alice))
    with casebank.database.session() as session:
        assert users.user_for_token(session, token).username == "alice"
        with pytest.raises(NotAuthenticated):
            users.user_for_token(session, token + "x")
        from archive.models import ApiToken

        assert token not in {t.token_sha256 for t in session.scalars(select(ApiToken))}


def test_audit_log_records_actions_and_refuses_changes(casebank, make_user):
    make_user("alice")
    with casebank.database.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.created")).one()
        assert event.detail["username"] == "alice"
    with pytest.raises(audit.AuditLogIsAppendOnly):
        with casebank.database.session() as session:
            session.scalars(select(AuditEvent)).first().action = "tampered"
    with pytest.raises(audit.AuditLogIsAppendOnly):
        with casebank.database.session() as session:
            session.delete(session.scalars(select(AuditEvent)).first())
    with casebank.database.session() as session:
        assert session.scalars(select(AuditEvent.action)).all() == ["user.created"]
