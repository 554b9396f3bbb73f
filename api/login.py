"""Logging in and out, shared by the REST session endpoint and the login page: rate limits per
user name and per client address, audited failures, server-side sessions."""

from __future__ import annotations

from fastapi import HTTPException, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from archive import users
from archive.errors import NotAuthenticated
from archive.models import User

from .runtime import Casebank

SESSION_KEY = "sid"  # the random key of the server-side session; the cookie holds nothing else of note


class LoginGuard:
    """Counts failed logins per user name and per address; past the limit (Settings.login_rate,
    e.g. "10/minute") every attempt is refused, even with the right password, until the window
    moves on. In memory: one archive process serves the web UI."""

    def __init__(self, rate: str) -> None:
        self.rate = parse(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def _keys(self, username: str, address: str) -> list[tuple[str, str]]:
        return [("login-user", username.strip().lower()), ("login-address", address)]

    def allowed(self, username: str, address: str) -> bool:
        return all(self.limiter.test(self.rate, *key) for key in self._keys(username, address))

    def failed(self, username: str, address: str) -> None:
        for key in self._keys(username, address):
            self.limiter.hit(self.rate, *key)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _guard(request: Request) -> LoginGuard:
    return request.app.state.login_guard


def _audit_failure(cb: Casebank, username: str, address: str, reason: str) -> None:
    # its own transaction: the refused login's transaction is rolled back
    with cb.database.session() as session:
        users.record_failed_login(session, username, address, reason)


def log_in(request: Request, cb: Casebank, username: str, password: str) -> User:
    """Checks the password and starts a session (the cookie gets its key); raises HTTPException
    429 when rate limited, NotAuthenticated when refused."""
    address, guard = client_address(request), _guard(request)
    if not guard.allowed(username, address):
        _audit_failure(cb, username, address, "rate limited")
        raise HTTPException(429, f"too many failed logins; wait a minute and try again (limit {guard.rate})")
    try:
        with cb.database.session() as session:
            user = users.authenticate(session, username, password)
            key = users.start_session(session, user, hours=cb.settings.session_hours, address=address,
                                      user_agent=request.headers.get("user-agent", ""))
            session.expunge(user)
    except NotAuthenticated as exc:
        guard.failed(username, address)
        _audit_failure(cb, username, address, str(exc))
        raise
    # a fresh cookie: a session (or CSRF token) planted before login is not carried into it
    request.session.clear()
    request.session[SESSION_KEY] = key
    return user


def log_out(request: Request, cb: Casebank) -> None:
    key = request.session.get(SESSION_KEY)
    if isinstance(key, str):
        with cb.database.session() as session:
            users.end_session(session, key)
    request.session.clear()
