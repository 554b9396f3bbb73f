"""`casebank ae add / list / remove`, run as an admin runs them, and what the registry then decides."""

from __future__ import annotations

from api.runtime import Casebank
from api.settings import Settings
from archive.models import AeBinding, AeTrust, RegisteredAe
from archive.senders import Sender, identify

from .test_cli import run


def test_an_edge_registered_from_its_host_is_trusted_and_a_spoofed_title_is_not(tmp_path):
    data = tmp_path / "data"
    assert run("user", "add", "jane", "--email", "j@nhs.example", "--gmc", "7123456", data=data,
               stdin="a long enough passphrase\n").returncode == 0
    added = run("ae", "add", "EDGE1", "--trust", "edge", "--host", "127.0.0.1", "--user", "jane",
                "--description", "St Elsewhere export manager", data=data)
    assert added.returncode == 0, added.stderr
    assert "EDGE1 registered as edge (from 127.0.0.1, filing under jane)" in added.stdout
    listing = run("ae", "list", data=data)
    assert "EDGE1" in listing.stdout and "127.0.0.1" in listing.stdout and "St Elsewhere" in listing.stdout

    with Casebank.open(Settings(data=data)) as casebank, casebank.database.session() as session:
        entry = session.get(RegisteredAe, "EDGE1")
        assert entry is not None and entry.trust is AeTrust.EDGE
        assert session.get(AeBinding, "EDGE1").user_id is not None
        genuine = identify(session, Sender(calling_ae="EDGE1", address="127.0.0.1"))
        spoofed = identify(session, Sender(calling_ae="EDGE1", address="10.9.9.9"))
        assert genuine.author_trusted and genuine.user is not None and genuine.user.username == "jane"
        assert not spoofed.author_trusted and spoofed.user is None  # not even its binding is believed

    assert run("ae", "remove", "EDGE1", data=data).returncode == 0
    assert "no AE titles are registered" in run("ae", "list", data=data).stdout
    missing = run("ae", "remove", "EDGE1", data=data)
    assert missing.returncode == 2 and "EDGE1" in missing.stderr and "Traceback" not in missing.stderr


def test_a_bad_trust_or_title_is_refused_with_a_message(tmp_path):
    bad_trust = run("ae", "add", "EDGE1", "--trust", "total", data=tmp_path)
    assert bad_trust.returncode == 2 and "invalid choice" in bad_trust.stderr
    bad_title = run("ae", "add", "A\\B", "--trust", "user", data=tmp_path)
    assert bad_title.returncode == 2 and "no backslash" in bad_title.stderr
