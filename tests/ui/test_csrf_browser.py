"""CSRF in Debian's headless Chromium: a page served from another origin of the same site (another
port of 127.0.0.1, so the Lax session cookie is sent along) auto-submits a form to the archive's
share endpoint while the owner is logged in. The grant must not happen; the same share made from
the archive's own folder page must."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from archive import folders
from archive.models import FolderGrant

from ..peers import LiveServer, free_port
from .test_browser_scenario import logged_in
from .test_viewer import CHROMIUM, CHROMIUM_ARGS, chromium, database_url  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.peers]


def _attack_page(target: str) -> bytes:
    return f"""<!doctype html><html><body>
<form id="f" method="post" action="{target}">
  <input name="username" value="mallory"><input name="right" value="edit"><input name="send" value="true">
</form>
<script>document.getElementById("f").submit();</script>
</body></html>""".encode()


class _Attacker(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *_args: object) -> None:
        pass


def _serve_attack(page: bytes) -> Iterator[str]:
    port = free_port()
    handler = type("Handler", (_Attacker,), {"page": page})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.server_close()


def _grantees(casebank, folder_id: int) -> set[str]:  # type: ignore[no-untyped-def]
    with casebank.database.session() as session:
        rows = session.scalars(select(FolderGrant).where(FolderGrant.folder_id == folder_id)).all()
        return {str(g.user_id) for g in rows}


def test_a_form_from_another_origin_cannot_share_a_folder_but_the_archives_own_page_can(casebank, make_user, chromium):  # noqa: F811
    alice, mallory = make_user("alice"), make_user("mallory")
    with casebank.database.session() as session:
        folder_id = folders.personal_folder(session, alice).id
    with LiveServer(casebank) as live:
        page = logged_in(chromium, live, "alice")
        attack = _serve_attack(_attack_page(f"{live.url}/folders/{folder_id}/shares"))
        attacker_url = next(attack)
        try:
            page.goto(attacker_url)
            page.wait_for_load_state("networkidle")
            page.wait_for_url(lambda url: url.startswith(live.url), timeout=10_000)  # the forged post went out
            assert "cross-origin" in page.content() or "CSRF" in page.content()
            assert _grantees(casebank, folder_id) == set()  # refused: no grant for mallory

            page.goto(f"{live.url}/folders/{folder_id}")
            page.fill("form[aria-label='Share with a user'] input[name=username]", "mallory")
            page.click("form[aria-label='Share with a user'] button")
            page.wait_for_selector("tr[data-user=mallory]")
            assert _grantees(casebank, folder_id) == {str(mallory.id)}
        finally:
            next(attack, None)
