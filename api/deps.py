"""Shared request dependencies: the Casebank runtime and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from archive import users
from archive.errors import NotAuthenticated
from archive.models import User

from .runtime import Casebank

SESSION_USER = "user_id"


def get_casebank(request: Request) -> Casebank:
    return request.app.state.casebank


@dataclass(frozen=True)
class Credentials:
    """What the request presented; resolved to a User inside the caller's database session."""

    bearer_token: str | None
    session_user_id: int | None

    @property
    def present(self) -> bool:
        return bool(self.bearer_token or self.session_user_id)

    def user(self, session: Session) -> User:
        if self.bearer_token:
            return users.user_for_token(session, self.bearer_token)
        if self.session_user_id is not None:
            user = session.get(User, self.session_user_id)
            if user is not None:
                return user
        raise NotAuthenticated("log in, or send 'Authorization: Bearer <token>' (see `casebank token`)")


def get_credentials(request: Request) -> Credentials:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return Credentials(bearer_token=bearer, session_user_id=request.session.get(SESSION_USER))


CasebankDep = Annotated[Casebank, Depends(get_casebank)]
CredentialsDep = Annotated[Credentials, Depends(get_credentials)]
