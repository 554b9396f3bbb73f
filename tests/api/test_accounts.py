"""Accounts against the real app and CLI: password policy, login rate limits and audit, equal-time
answers, server-side sessions that logout ends, expiring and revocable tokens, disabled users."""

from __future__ import annotations

import io
import statistics
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.app import create_app
from api.cli import main as cli
from archive import users
from archive.errors import InvalidInput, NotAuthenticated
from archive.models import ApiToken, AuditEvent, UserSession, utcnow

from ..conftest import password_of


def _login(client: TestClient, name: str, password: str | None = None):  # type: ignore[no-untyped-def]
    return client.post("/api/session", json={"username": name, "password": password or password_of(name)})


@pytest.mark.parametrize("password", ["a", "short-pw-11", "1qaz2wsx3edc", "qwerty123456", "aaaaaaaaaaaaaaa"])
def test_weak_passwords_are_refused_on_creation_and_change(casebank, make_user, password):
    alice = make_user("alice")
    with casebank.database.session() as session:
        with pytest.raises(InvalidInput):
            users.add_user(session, "bob", email="b@x.example", gmc="1", password=password)
        with pytest.raises(InvalidInput):
            users.set_password(session, session.merge(alice), password)


def test_only_the_demo_seed_may_skip_the_policy(casebank):
    with casebank.database.session() as session:
        users.add_user(session, "demo", email="d@x.example", gmc="1", password="demo", skip_password_policy=True)
        assert users.authenticate(session, "demo", "demo").username == "demo"


def test_the_eleventh_failed_login_in_a_minute_is_refused_even_with_the_right_password(casebank, client, make_user):
    make_user("alice")
    for _ in range(10):
        assert _login(client, "alice", "wrong password!").status_code == 401
    refused = _login(client, "alice")
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
    page = client.post("/login", data={"username": "alice", "password": password_of("alice")})
    assert page.status_code == 429 and "too many failed logins" in page.text
    with casebank.database.session() as session:
        failed = session.scalars(select(AuditEvent).where(AuditEvent.action == "login.failed")).all()
    assert len(failed) >= 11 and all(e.object_id == "alice" for e in failed)
    assert not any("wrong password!" in str(e.detail) for e in failed)  # never the password


def test_failed_logins_are_counted_per_address_across_user_names(casebank, make_user):
    make_user("alice")
    app = create_app(casebank)
    with TestClient(app, client=("10.0.0.1", 5000)) as attacker, TestClient(app, client=("10.0.0.2", 5000)) as colleague:
        for n in range(10):
            assert _login(attacker, f"guess{n}", "wrong password!").status_code == 401
        assert _login(attacker, "alice").status_code == 429
        assert _login(colleague, "alice").status_code == 200  # another address is not locked out


def test_unknown_and_known_user_names_take_the_same_time(casebank, make_user):
    make_user("alice")

    def median(name: str) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            with casebank.database.session() as session, pytest.raises(NotAuthenticated):
                users.authenticate(session, name, "wrong password!")
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    known, unknown = median("alice"), median("nobody")
    assert 0.5 < unknown / known < 2, (known, unknown)


def test_logout_ends_the_session_on_the_server(casebank, client, make_user):
    make_user("alice")
    assert _login(client, "alice").status_code == 200
    stolen = client.cookies.get("casebank_session")
    assert client.delete("/api/session").status_code == 204
    with TestClient(create_app(casebank), cookies={"casebank_session": stolen}) as thief:
        assert thief.get("/api/me").status_code == 401
    with casebank.database.session() as session:
        assert session.scalars(select(UserSession)).one().ended_at is not None


def test_sessions_expire_on_the_server(casebank, client, make_user):
    make_user("alice")
    _login(client, "alice")
    assert client.get("/api/me").status_code == 200
    with casebank.database.session() as session:
        session.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/api/me").status_code == 401


def test_tokens_expire_and_disabled_users_are_refused(casebank, client, make_user):
    alice = make_user("alice")
    with casebank.database.session() as session:
        token = users.issue_token(session, session.merge(alice), name="ci", days=1)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=bearer).status_code == 200
    with casebank.database.session() as session:
        session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/api/me", headers=bearer).status_code == 401
    _login(client, "alice")
    with casebank.database.session() as session:
        users.set_disabled(session, session.merge(alice), True)
    assert client.get("/api/me").status_code == 401  # the open session ended
    refused = _login(client, "alice")
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]


def _cli(tmp_path, *args: str, stdin: str = "", capsys=None) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = cli([*args, "--data", str(tmp_path)])
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_tokens_list_revoke_disable_enable_and_password(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CASEBANK_DATABASE_URL", raising=False)
    run = lambda *a, stdin="": _cli(tmp_path, *a, stdin=stdin, capsys=capsys)
    assert run("user", "add", "alice", "--email", "a@x.example", "--gmc", "1", stdin="pw\n")[0] == 2  # policy
    assert run("user", "add", "alice", "--email", "a@x.example", "--gmc", "1", stdin="a long cli passphrase\n")[0] == 0
    code, first, _ = run("token", "alice", "--name", "ohif", "--days", "30")
    code2, second, _ = run("token", "alice", "--name", "ci")
    assert code == code2 == 0 and first.startswith("cb_") and second.startswith("cb_")
    listed = run("token", "--list", "alice")[1]
    assert "ohif\tactive" in listed and "ci\tactive" in listed
    assert run("token", "alice", "--revoke", "ohif")[0] == 0
    assert run("token", "--revoke", second.strip())[0] == 0
    assert "ohif\trevoked" in run("token", "--list", "alice")[1]

    from api.cli.common import open_casebank

    class Args:
        data = str(tmp_path)

    def check(password: str) -> str:
        with open_casebank(Args()) as casebank, casebank.database.session() as session:  # type: ignore[arg-type]
            try:
                return users.authenticate(session, "alice", password).username
            except NotAuthenticated as exc:
                return str(exc)

    with open_casebank(Args()) as casebank, casebank.database.session() as session:  # type: ignore[arg-type]
        for token in (first, second):
            with pytest.raises(NotAuthenticated):
                users.user_for_token(session, token.strip())
    assert run("user", "password", "alice", stdin="short\n")[0] == 2
    assert run("user", "password", "alice", stdin="another long passphrase\n")[0] == 0
    assert check("another long passphrase") == "alice"
    assert run("user", "disable", "alice")[0] == 0
    assert "disabled" in check("another long passphrase")
    assert run("user", "enable", "alice")[0] == 0
    assert check("another long passphrase") == "alice"
