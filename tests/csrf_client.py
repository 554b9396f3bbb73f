"""A TestClient that behaves like the UI's own pages: before a cookie-authenticated write it reads
the session's CSRF token (as a page does from its form or meta tag) and sends it. Tests of the
CSRF protection itself use a plain TestClient."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

SAFE = {"GET", "HEAD", "OPTIONS"}
TOKEN_URL = "/api/session/csrf"


def _names(headers: Any) -> set[str]:
    return {str(k).lower() for k in dict(headers or {})}


class BrowserLikeClient(TestClient):
    def request(self, method: str, url: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        given = _names(kwargs.get("headers")) | _names(self.headers)
        if method.upper() not in SAFE and not {"authorization", "x-csrf-token"} & given:
            token = super().request("GET", TOKEN_URL).json()["csrf_token"]
            kwargs["headers"] = {**dict(kwargs.get("headers") or {}), "X-CSRF-Token": token}
        return super().request(method, url, **kwargs)
