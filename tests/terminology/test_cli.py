"""`casebank terminology load`, run as a user runs it."""

from __future__ import annotations

from ..test_cli import run
from .rf2 import write_rf2_fixture


def test_load_a_release_then_a_bad_file(tmp_path):
    loaded = run("terminology", "load", "SCT", str(write_rf2_fixture(tmp_path / "release")), data=tmp_path / "data")
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 5 SNOMED concept(s)" in loaded.stdout
    assert "5/5 concepts" in loaded.stderr

    bad = tmp_path / "acr.csv"
    bad.write_text("id,name\n1,x\n")
    refused = run("terminology", "load", "ACR", str(bad), data=tmp_path / "data")
    assert refused.returncode == 1
    assert f"{bad}: not an ACR Index CSV" in refused.stderr and "no 'code' column" in refused.stderr
    assert "Traceback" not in refused.stderr

    missing = run("terminology", "load", "SNOMED", str(tmp_path / "nowhere"), data=tmp_path / "data")
    assert missing.returncode == 1 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr
