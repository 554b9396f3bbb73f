"""Users, passwords, bearer tokens and AE-title bindings."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, security
from .errors import InvalidInput, NotAuthenticated, NotFound
from .folders import create_personal_folder
from .models import AeBinding, ApiToken, Folder, User
from .submissions import claim_unclaimed

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE VR: no backslash, 16 chars


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
) -> NewUser:
    """Create a user and that user's personal folder, in one transaction."""
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


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not security.verify_password(user.password_hash, password):
        raise NotAuthenticated("unknown user name or wrong password")
    return user


def issue_token(session: Session, user: User) -> str:
    token = security.new_token()
    session.add(ApiToken(user_id=user.id, token_sha256=security.token_digest(token)))
    audit.record(session, user, "token.issued", "user", user.id)
    return token


def user_for_token(session: Session, token: str) -> User:
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == security.token_digest(token)))
    if row is None:
        raise NotAuthenticated("the bearer token is not valid")
    return row.user


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
