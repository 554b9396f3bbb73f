"""Users, passwords, bearer tokens and AE-title bindings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, security
from .errors import InvalidInput, NotAuthenticated, NotFound
from .folders import create_personal_folder
from .models import AeBinding, ApiToken, Folder, User, UserSession, utcnow
from .senders import AE_TITLE
from .submissions import claim_unclaimed

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class NewUser:
    user: User
    generated_password: str | None  # shown once to whoever created the account


def add_user(
    session: Session,
    username: str,
    *,
    email: str,
    gmc: str,
    display_name: str | None = None,
    password: str | None = None,
    admin: bool = False,
    actor: User | str = "cli",
    skip_password_policy: bool = False,
) -> NewUser:
    """Create a user and that user's personal folder, in one transaction.

    A given password must pass the policy (security.password_problem); `skip_password_policy` is
    for the throw-away demo archive's demo/demo account only."""
    username, gmc = username.strip().lower(), gmc.strip()
    if not USERNAME.match(username):
        raise InvalidInput(f"username {username!r} must be lower-case letters, digits, '.', '_' or '-'")
    if "@" not in email:
        raise InvalidInput(f"email {email!r} is not an email address")
    if not gmc:
        raise InvalidInput("a GMC number (or equivalent professional ID) is required")
    if session.scalar(select(User).where(User.username == username)):
        raise InvalidInput(f"user {username!r} already exists")
    if session.scalar(select(User).where(User.gmc == gmc)):
        raise InvalidInput(f"GMC number {gmc} already belongs to another user")
    generated = None
    if not password:
        password = generated = security.generate_password()
    elif not skip_password_policy:
        check_password(password, username)
    user = User(
        username=username,
        display_name=display_name or username,
        email=email,
        gmc=gmc,
        password_hash=security.hash_password(password),
        is_admin=admin,
    )
    session.add(user)
    session.flush()
    create_personal_folder(session, user)
    audit.record(session, actor, "user.created", "user", user.id, username=username, gmc=gmc, admin=admin)
    claim_unclaimed(session, user)
    return NewUser(user, generated)


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def check_password(password: str, username: str = "") -> None:
    problem = security.password_problem(password, username)
    if problem:
        raise InvalidInput(problem)


def set_password(session: Session, user: User, password: str, actor: User | str = "cli") -> None:
    """Change `user`'s password (policy applies) and end every session they have open."""
    check_password(password, user.username)
    user.password_hash = security.hash_password(password)
    end_sessions(session, user)
    audit.record(session, actor, "user.password_changed", "user", user.id, username=user.username)


WRONG_LOGIN = "unknown user name or wrong password"


def authenticate(session: Session, username: str, password: str) -> User:
    """The user whose name and password these are. Takes the same time for unknown names as for
    known ones (an argon2 verification either way), so names cannot be probed by timing."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        security.verify_dummy(password)
        raise NotAuthenticated(WRONG_LOGIN)
    if not security.verify_password(user.password_hash, password):
        raise NotAuthenticated(WRONG_LOGIN)
    if user.disabled:
        raise NotAuthenticated("this account is disabled; ask an administrator")
    return user


def record_failed_login(session: Session, username: str, address: str, reason: str) -> None:
    """Audits a refused login (never the password)."""
    audit.record(session, f"address:{address}", "login.failed", "user", username.strip().lower()[:64],
                 address=address, reason=reason)


def set_disabled(session: Session, user: User, disabled: bool, actor: User | str = "cli") -> None:
    """A disabled user cannot log in; their sessions end and their tokens are refused."""
    user.disabled = disabled
    if disabled:
        end_sessions(session, user)
    audit.record(session, actor, "user.disabled" if disabled else "user.enabled", "user", user.id,
                 username=user.username)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored one is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# Last-used times are written at most this often, not on every request.
_TOUCH_EVERY = timedelta(minutes=1)


# --- Bearer tokens -------------------------------------------------------------------------------


def issue_token(session: Session, user: User, *, name: str = "", days: float | None = 90,
                actor: User | str | None = None) -> str:
    """A new bearer token for `user`, valid for `days` (None: until revoked). Shown once."""
    if user.disabled:
        raise InvalidInput(f"user {user.username} is disabled")
    token = security.new_token()
    expires = utcnow() + timedelta(days=days) if days is not None else None
    row = ApiToken(user_id=user.id, token_sha256=security.token_digest(token), name=name.strip()[:100],
                   expires_at=expires)
    session.add(row)
    session.flush()
    audit.record(session, actor or user, "token.issued", "user", user.id, token_id=row.id, name=row.name,
                 expires_at=expires.isoformat() if expires else None)
    return token


def user_for_token(session: Session, token: str) -> User:
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == security.token_digest(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated("the bearer token is not valid")
    if row.expires_at is not None and _aware(row.expires_at) <= now:
        raise NotAuthenticated("the bearer token has expired; make a new one with `casebank token`")
    if row.user.disabled:
        raise NotAuthenticated("the bearer token's user is disabled")
    if row.last_used_at is None or now - _aware(row.last_used_at) > _TOUCH_EVERY:
        row.last_used_at = now
    return row.user


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def revoke_token(session: Session, *, token: str | None = None, user: User | None = None,
                 which: str | None = None, actor: User | str = "cli") -> list[ApiToken]:
    """Revoke a token given by its value, or `user`'s token(s) with id or name `which`."""
    if token is not None:
        found = [row] if (row := session.scalar(
            select(ApiToken).where(ApiToken.token_sha256 == security.token_digest(token.strip())))) else []
    elif user is not None and which:
        found = [t for t in tokens_of(session, user) if str(t.id) == which or (t.name and t.name == which)]
    else:
        raise InvalidInput("name the token: its value, or a user and the token's id or name")
    live = [t for t in found if t.revoked_at is None]
    if not live:
        raise NotFound("no such token, or it was revoked already")
    for row in live:
        row.revoked_at = utcnow()
        audit.record(session, actor, "token.revoked", "user", row.user_id, token_id=row.id, name=row.name)
    session.flush()
    return live


# --- Browser sessions ----------------------------------------------------------------------------


def start_session(session: Session, user: User, *, hours: float, address: str = "", user_agent: str = "") -> str:
    """A server-side session for `user`; returns the random key for the cookie (stored hashed)."""
    key = security.new_session_key()
    session.add(UserSession(key_sha256=security.token_digest(key), user_id=user.id,
                            expires_at=utcnow() + timedelta(hours=hours),
                            address=address[:64], user_agent=user_agent[:300]))
    audit.record(session, user, "login", "user", user.id, address=address)
    return key


def _live_session(session: Session, key: str) -> UserSession | None:
    row = session.scalar(select(UserSession).where(UserSession.key_sha256 == security.token_digest(key)))
    if row is None or row.ended_at is not None or _aware(row.expires_at) <= utcnow() or row.user.disabled:
        return None
    return row


def user_for_session(session: Session, key: str) -> User:
    row = _live_session(session, key)
    if row is None:
        raise NotAuthenticated("the session has ended; log in again")
    now = utcnow()
    if now - _aware(row.last_seen_at) > _TOUCH_EVERY:
        row.last_seen_at = now
    return row.user


def end_session(session: Session, key: str) -> None:
    """Logout: the key stops working at once, whatever the cookie says."""
    row = _live_session(session, key)
    if row is not None:
        row.ended_at = utcnow()
        audit.record(session, row.user, "logout", "user", row.user_id)


def end_sessions(session: Session, user: User) -> int:
    rows = list(session.scalars(select(UserSession).where(UserSession.user_id == user.id,
                                                          UserSession.ended_at.is_(None))))
    for row in rows:
        row.ended_at = utcnow()
    session.flush()
    return len(rows)


def bind_ae(session: Session, ae_title: str, user: User, actor: User | str = "cli") -> AeBinding:
    """Files what the calling AE `ae_title` sends (without other routing) into `user`'s personal folder."""
    binding = _binding(session, ae_title)
    binding.user_id, binding.folder_id = user.id, None
    audit.record(session, actor, "ae.bound", "ae", binding.ae_title, user=user.username)
    return binding


def bind_called_ae(session: Session, ae_title: str, folder: Folder, actor: User | str = "cli") -> AeBinding:
    """Files what is sent to the called AE `ae_title` into `folder` (senders need send rights)."""
    binding = _binding(session, ae_title)
    binding.user_id, binding.folder_id = None, folder.id
    audit.record(session, actor, "ae.bound", "ae", binding.ae_title, folder_id=folder.id)
    return binding


def _binding(session: Session, ae_title: str) -> AeBinding:
    ae_title = ae_title.strip()
    if not AE_TITLE.match(ae_title):
        raise InvalidInput(f"AE title {ae_title!r} must be 1-16 characters with no backslash")
    binding = session.get(AeBinding, ae_title) or AeBinding(ae_title=ae_title)
    session.add(binding)
    return binding
