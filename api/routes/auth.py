from fastapi import APIRouter, Request, Response

from archive import users

from ..deps import SESSION_USER, CasebankDep, CredentialsDep
from ..schemas import LoginIn, UserOut

router = APIRouter(tags=["auth"])


@router.post("/api/session", response_model=UserOut)
def login(body: LoginIn, request: Request, cb: CasebankDep) -> UserOut:
    """Browser login: sets a signed session cookie. Scripts use `casebank token` instead."""
    with cb.database.session() as session:
        user = users.authenticate(session, body.username, body.password)
        request.session[SESSION_USER] = user.id
        return UserOut.model_validate(user, from_attributes=True)


@router.delete("/api/session", status_code=204)
def logout(request: Request) -> Response:
    request.session.clear()
    return Response(status_code=204)


@router.get("/api/me", response_model=UserOut)
def me(cb: CasebankDep, credentials: CredentialsDep) -> UserOut:
    with cb.database.session() as session:
        return UserOut.model_validate(credentials.user(session), from_attributes=True)
