"""Password hashing (argon2id) and bearer tokens (random, stored only as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def new_token() -> str:
    return "cb_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A hash of a password nobody knows: verifying against it when the user name is unknown makes
# unknown and known names take the same argon2 time, so names cannot be told apart by timing.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(24))


def verify_dummy(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def new_session_key() -> str:
    """The random key a session cookie carries; the database keeps only its SHA-256."""
    return secrets.token_urlsafe(32)


# --- Password policy -----------------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this only bounds the work one request causes


def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of the leaked-password corpus zxcvbn ships (no download)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


_COMMON: frozenset[str] | None = None


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` is refused, or None when it passes: at least 12 characters, not one of the
    common passwords, not the user name, not one character repeated."""
    global _COMMON
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"passwords need at least {MIN_PASSWORD_LENGTH} characters (this one has {len(password)})"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"passwords may have at most {MAX_PASSWORD_LENGTH} characters"
    if _COMMON is None:
        _COMMON = _common_passwords()
    lowered = password.lower()
    if lowered in _COMMON:
        return "this password is on the list of commonly used passwords; choose another"
    if username and lowered.strip() == username.lower():
        return "the password may not be the user name"
    if len(set(password)) < 4:
        return "the password needs more than three different characters"
    return None
