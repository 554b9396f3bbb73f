from fastapi import APIRouter, Request, Response

from .. import csrf
from ..deps import CasebankDep, CredentialsDep
from ..login import log_in, log_out
from ..schemas import LoginIn, SessionOut, UserOut

router = APIRouter(tags=["auth"])


@router.post("/api/session", response_model=SessionOut)
def login(body: LoginIn, request: Request, cb: CasebankDep) -> SessionOut:
    """Browser login: starts a server-side session (the cookie holds only its random key) and answers
    the CSRF token that later cookie-authenticated writes send as `X-CSRF-Token`. Failed logins are
    audited; past `CASEBANK_LOGIN_RATE` failures per user name or address the answer is 429.
    Scripts use `casebank token` instead."""
    user = log_in(request, cb, body.username, body.password)
    return SessionOut(**UserOut.model_validate(user, from_attributes=True).model_dump(),
                      csrf_token=csrf.csrf_token(request))


@router.get("/api/session/csrf")
def csrf_token(request: Request) -> dict[str, str]:
    """The CSRF token of this browser session (send it as `X-CSRF-Token` on writes)."""
    return {"csrf_token": csrf.csrf_token(request)}


@router.delete("/api/session", status_code=204)
def logout(request: Request, cb: CasebankDep) -> Response:
    """Ends the session on the server: the old cookie no longer works."""
    log_out(request, cb)
    return Response(status_code=204)


@router.get("/api/me", response_model=UserOut)
def me(cb: CasebankDep, credentials: CredentialsDep) -> UserOut:
    with cb.database.session() as session:
        return UserOut.model_validate(credentials.user(session), from_attributes=True)
