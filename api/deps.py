"""Shared request dependencies: the Casebank runtime and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from archive import users
from archive.errors import NotAuthenticated
from archive.models import User

from . import csrf
from .login import SESSION_KEY
from .runtime import Casebank


def get_casebank(request: Request) -> Casebank:
    return request.app.state.casebank


@dataclass(frozen=True)
class Credentials:
    """What the request presented; resolved to a User inside the caller's database session."""

    bearer_token: str | None
    session_key: str | None  # the random key of a server-side session (archive.models.UserSession)

    @property
    def present(self) -> bool:
        return bool(self.bearer_token or self.session_key)

    def user(self, session: Session) -> User:
        if self.bearer_token:
            return users.user_for_token(session, self.bearer_token)
        if self.session_key:
            return users.user_for_session(session, self.session_key)
        raise NotAuthenticated("log in, or send 'Authorization: Bearer <token>' (see `casebank token`)")


def get_credentials(request: Request) -> Credentials:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    key = request.session.get(SESSION_KEY)
    return Credentials(bearer_token=bearer, session_key=key if isinstance(key, str) else None)


async def verify_csrf(request: Request) -> None:
    """Every route's guard against forged cookie-authenticated writes (see api.csrf)."""
    await csrf.verify(request, request.app.state.casebank.settings.base_url)


CasebankDep = Annotated[Casebank, Depends(get_casebank)]
CredentialsDep = Annotated[Credentials, Depends(get_credentials)]
