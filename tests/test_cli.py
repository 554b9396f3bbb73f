"""The `casebank` command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASEBANK = str(Path(sys.executable).with_name("casebank"))

COMMANDS = [
    [], ["serve"], ["demo"], ["reindex"], ["migrate"], ["token"], ["user"], ["user", "add"], ["ae"], ["ae", "bind"], ["ae", "add"], ["ae", "list"], ["ae", "remove"],
    ["user", "disable"], ["user", "enable"], ["user", "password"],
    ["deid"], ["edge"], ["edge", "run"], ["edge", "keygen"], ["edge", "project"], ["edge", "reidentify"],
    ["edge", "export-maps"], ["edge", "user-add"], ["folder"], ["folder", "add"], ["folder", "limit"], ["folder", "grant"], ["folder", "restrict"],
    ["terminology"], ["terminology", "load"],
]


def run(*args: str, data: Path, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CASEBANK, *args, "--data", str(data)] if args and args[0] != "--help" else [CASEBANK, *args],
        input=stdin, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "casebank")
def test_every_command_has_help(command):
    done = subprocess.run([CASEBANK, *command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: casebank")


def test_top_level_help_lists_the_configuration_variables():
    done = subprocess.run([CASEBANK, "--help"], capture_output=True, text=True, timeout=60)
    for variable in ("CASEBANK_DATA", "CASEBANK_DATABASE_URL", "CASEBANK_SEARCH_URL", "CASEBANK_SMTP_URL"):
        assert variable in done.stdout


def test_user_add_token_and_ae_bind(tmp_path):
    created = run("user", "add", "alice", "--email", "alice@hospital.example", "--gmc", "1234567", data=tmp_path, stdin="s3cret-pw-for-cli-tests\n")
    assert created.returncode == 0, created.stderr
    assert "created user alice with personal folder /alice" in created.stdout
    assert "password:" not in created.stdout  # it came from stdin

    generated = run("user", "add", "bob", "--email", "bob@hospital.example", "--gmc", "7654321", "--generate-password", data=tmp_path)
    assert generated.returncode == 0 and "password: " in generated.stdout

    token = run("token", "alice", data=tmp_path)
    assert token.returncode == 0 and token.stdout.startswith("cb_")

    bound = run("ae", "bind", "PACS1", "alice", data=tmp_path)
    assert bound.returncode == 0 and "PACS1" in bound.stdout

    from api.runtime import Casebank
    from api.settings import Settings
    from archive import users

    casebank = Casebank.open(Settings(data=tmp_path))
    try:
        with casebank.database.session() as session:
            assert users.authenticate(session, "alice", "s3cret-pw-for-cli-tests").gmc == "1234567"
            assert users.user_for_token(session, token.stdout.strip()).username == "alice"
    finally:
        casebank.close()


def test_cli_errors_name_the_problem_without_a_traceback(tmp_path):
    run("user", "add", "alice", "--email", "a@hospital.example", "--gmc", "1", data=tmp_path, stdin="pw-for-cli-tests\n")
    again = run("user", "add", "alice", "--email", "a@hospital.example", "--gmc", "2", data=tmp_path, stdin="pw-for-cli-tests\n")
    assert again.returncode == 2
    assert "user 'alice' already exists" in again.stderr
    assert "Traceback" not in again.stderr
    unknown = run("token", "nobody", data=tmp_path)
    assert unknown.returncode == 2 and "no user named 'nobody'" in unknown.stderr
    bad_ae = run("ae", "bind", "WAY-TOO-LONG-AE-TITLE", "alice", data=tmp_path)
    assert bad_ae.returncode == 2 and "1-16 characters" in bad_ae.stderr


def test_folders_called_ae_binding_and_limits(tmp_path):
    run("user", "add", "root", "--email", "r@hospital.example", "--gmc", "1", "--admin", data=tmp_path, stdin="pw-for-cli-tests\n")
    run("user", "add", "alice", "--email", "a@hospital.example", "--gmc", "2", data=tmp_path, stdin="pw-for-cli-tests\n")
    assert run("folder", "add", "/Teaching", "--owner", "root", data=tmp_path).returncode == 0
    sub = run("folder", "add", "/Teaching/Chest", "--owner", "root", "--kind", "ldm", data=tmp_path)
    assert "created /Teaching/Chest (ldm) owned by root" in sub.stdout
    assert run("folder", "grant", "/Teaching", "alice", "view", "send", data=tmp_path).returncode == 0
    bound = run("ae", "bind", "TEACHING", "--folder", "/Teaching/Chest", data=tmp_path)
    assert "called AE TEACHING now file into /Teaching/Chest" in bound.stdout
    limited = run("folder", "limit", "/Teaching", "1000000", "--hard", data=tmp_path)
    assert "hard limit of 1000000 bytes" in limited.stdout
    restricted = run("folder", "restrict", "/Teaching", "--gmc", "2", "--ae", "EXAMPACS", data=tmp_path)
    assert "/Teaching accepts only 2, EXAMPACS" in restricted.stdout
    refused = run("folder", "restrict", "/Teaching", "--gmc", "3", "--by", "alice", data=tmp_path)
    assert refused.returncode == 2 and "alice may not edit folder /Teaching" in refused.stderr
    missing = run("ae", "bind", "X", "--folder", "/Nope", data=tmp_path)
    assert missing.returncode == 2 and "no folder /Nope" in missing.stderr

    from api.runtime import Casebank
    from api.settings import Settings
    from archive import folders, users
    from sqlalchemy import select

    from archive.models import AeBinding, SenderRestriction

    with Casebank.open(Settings(data=tmp_path)) as casebank, casebank.database.session() as session:
        teaching = folders.folder_by_path(session, "/Teaching")
        assert teaching.storage_limit_bytes == 1000000 and teaching.limit_is_hard
        assert session.get(AeBinding, "TEACHING").folder_id == folders.folder_by_path(session, "/Teaching/Chest").id
        alice_rights = folders.rights_on(session, users.get_user(session, "alice"), teaching)
        assert alice_rights.view and alice_rights.send and not alice_rights.edit
        restrictions = session.scalars(select(SenderRestriction).where(SenderRestriction.folder_id == teaching.id))
        assert {(r.kind.value, r.value) for r in restrictions} == {("gmc", "2"), ("ae", "EXAMPACS")}


def test_demo_serves_a_populated_archive(tmp_path):
    from .peers import free_port, wait_for_port

    http_port, dicom_port = free_port(), free_port()
    process = subprocess.Popen(
        [CASEBANK, "demo", "--data", str(tmp_path), "--http", f"127.0.0.1:{http_port}", "--dicom-port", str(dicom_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for_port(http_port, timeout=90)
        import requests

        session = requests.Session()
        session.post(f"http://127.0.0.1:{http_port}/api/session", json={"username": "demo", "password": "demo"}, timeout=10).raise_for_status()
        found = session.get(f"http://127.0.0.1:{http_port}/api/search", params={"q": "metastases"}, timeout=10).json()
        assert found["total"] == 1
        every = session.get(f"http://127.0.0.1:{http_port}/api/search", params={"q": ""}, timeout=10).json()
        assert every["total"] == 4
        case = session.get(f"http://127.0.0.1:{http_port}/api/cases/{found['hits'][0]['case_id']}", timeout=10).json()
        assert case["status"] == "complete" and case["author"]["gmc"] == "7000000"
        assert case["codes"] == [{"system": "I10", "code": "C79.5", "display": "Secondary malignant neoplasm of bone and bone marrow"}]
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_deid_writes_deidentified_files_and_names_the_bad_ones(tmp_path):
    from pydicom import dcmread

    from . import dicom_data

    source = tmp_path / "in" / "SMITH_JOHN"
    datasets = dicom_data.study(["CT_small.dcm", "MR_small.dcm"])
    for ds in datasets:
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Smith^John", "9434765919", "19600101"
    dicom_data.write(datasets, source)
    (source / "notes.txt").write_text("not dicom")
    done = run("deid", str(tmp_path / "in"), str(tmp_path / "out"), "--option", "RETAIN_PATIENT_CHARACTERISTICS", data=tmp_path / "data")
    assert done.returncode == 1  # one input was bad
    assert "notes.txt: not a DICOM file" in done.stderr and "Traceback" not in done.stderr
    assert "de-identified 2 file(s)" in done.stdout
    outputs = sorted((tmp_path / "out").rglob("*.dcm"))
    assert len(outputs) == 2 and not list((tmp_path / "out").rglob("*.part"))
    for path in outputs:
        assert "SMITH" not in str(path)
        raw = path.read_bytes()
        assert b"Smith" not in raw and b"9434765919" not in raw and b"19600101" not in raw
        out = dcmread(path)
        assert out.PatientIdentityRemoved == "YES"
        assert out.SOPInstanceUID not in {ds.SOPInstanceUID for ds in datasets}
        assert "PatientSex" in out  # the option kept it


def test_deid_project_keys_map_consistently_and_one_off_keys_do_not(tmp_path):
    from pydicom import dcmread

    from . import dicom_data

    dicom_data.write(dicom_data.study(["CT_small.dcm"]), tmp_path / "in")

    def output_uid(name: str, *project: str) -> str:
        done = run("deid", str(tmp_path / "in"), str(tmp_path / name), *project, data=tmp_path / "data")
        assert done.returncode == 0, done.stderr
        [path] = (tmp_path / name).rglob("*.dcm")
        return str(dcmread(path).SOPInstanceUID)

    assert output_uid("a", "--project", "lung-trial") == output_uid("b", "--project", "lung-trial")
    assert output_uid("c", "--project", "lung-trial") != output_uid("d", "--project", "other-trial")
    assert output_uid("e") != output_uid("f")
    assert oct((tmp_path / "data" / "projects" / "lung-trial.key").stat().st_mode & 0o777) == "0o600"


def test_deid_blanks_burned_in_text_of_ultrasound(tmp_path):
    import numpy as np
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    from ingest.deid.pixels import find_text_regions

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "us.dcm").write_bytes(Path(get_testdata_file("examples_ybr_color.dcm")).read_bytes())
    done = run("deid", str(tmp_path / "in"), str(tmp_path / "out"), data=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    [path] = (tmp_path / "out").rglob("*.dcm")
    out = dcmread(path)
    assert out.BurnedInAnnotation == "NO"
    original = dcmread(get_testdata_file("examples_ybr_color.dcm"))
    for region in find_text_regions(original).regions:
        patch = out.pixel_array[:, region.y:region.y + region.height, region.x:region.x + region.width]
        assert np.ptp(patch) == 0


def test_edge_user_add_generates_a_password_and_refuses_a_bad_gmc(tmp_path):
    from ingest.edge.users import EdgeUsers

    created = run("edge", "user-add", "ajones", "--gmc", "7000001", "--display-name", "Jones^Ann", data=tmp_path)
    assert created.returncode == 0, created.stderr
    password = created.stdout.split("password: ")[1].strip()
    assert EdgeUsers(tmp_path / "users.json").authenticate("ajones", password) is not None
    bad = run("edge", "user-add", "bsmith", "--gmc", "12", "--display-name", "Smith^Bo", data=tmp_path)
    assert bad.returncode != 0 and "7 digits" in bad.stderr and "Traceback" not in bad.stderr


def test_reindex_names_an_unreachable_search_backend_without_a_traceback(tmp_path):
    from tests.peers import free_port

    done = run("reindex", data=tmp_path, env={"CASEBANK_SEARCH_URL": f"http://127.0.0.1:{free_port()}"})
    assert done.returncode != 0 and "OpenSearch" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("flag", "released"), [([], False), (["--auto-release-template-cleaning"], True)])
def test_edge_run_passes_the_template_release_choice_to_the_edge(flag, released, tmp_path, monkeypatch):
    """In process: the parsed flag must reach EdgeConfig, or the README's promise is empty."""
    import ingest.edge.service
    from api.cli import main

    seen = []

    class Stop(Exception):
        pass

    def edge(config):
        seen.append(config)
        raise Stop

    monkeypatch.setattr(ingest.edge.service, "Edge", edge)
    with pytest.raises(Stop):
        main(["edge", "run", "--data", str(tmp_path), "--archive", "CASEBANK@127.0.0.1:11112", *flag])
    assert [c.auto_release_template_cleaning for c in seen] == [released]
