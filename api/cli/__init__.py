"""The `casebank` command line. Each command is a thin adapter over domain services."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archive import senders, users
from archive.folders import create_folder, folder_by_path, folder_path, grant, restrict_senders
from archive.errors import ArchiveError
from archive.models import AeTrust, FolderKind
from archive.quota import set_limit

from ..settings import environment_help
from .common import CliError, open_casebank as _open, read_password as _read_password, settings_from as _settings

if TYPE_CHECKING:
    from ..runtime import Casebank

DEMO_USER, DEMO_PASSWORD, DEMO_GMC = "demo", "demo", "7000000"


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server import serve

    serve(_open(args))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve with a demo user and demo cases sent through the real DICOM receiver."""
    from ..server import serve

    casebank = _open(args)
    receiver = casebank.receiver()
    receiver.start()
    try:
        _load_demo(casebank)
    finally:
        receiver.stop()
        casebank.receivers.remove(receiver)
    host, port = casebank.settings.http_host_port()
    print(f"Casebank demo: open http://{host}:{port}/ and log in as {DEMO_USER} / {DEMO_PASSWORD}", flush=True)
    serve(casebank)
    return 0


def _load_demo(casebank: Casebank) -> None:
    """Demo cases arrive as TCE exports (images, ATFI report, KOS) over DICOM, like any other."""
    from ingest import demo

    with casebank.database.session() as session:
        try:
            user = users.get_user(session, DEMO_USER)
        except ArchiveError:
            # demo/demo breaks the password policy on purpose: the demo archive is a throw-away
            # local sandbox (`make run`) and the README tells everyone its login. Nowhere else.
            user = users.add_user(
                session, DEMO_USER, email="demo@casebank.invalid", gmc=DEMO_GMC,
                display_name="Dr Demo", password=DEMO_PASSWORD, skip_password_policy=True,
            ).user
        users.bind_ae(session, demo.DEMO_AE, user)
        # registered, so the demo loads with CASEBANK_KNOWN_AES_ONLY too; it signs as its own user
        senders.register_ae(session, demo.DEMO_AE, AeTrust.USER, host="127.0.0.1", description="casebank demo")
    settings = casebank.settings
    for case in demo.DEMO_CASES:
        datasets = demo.demo_export(case, author="Demo^Dana^^Dr", gmc=DEMO_GMC)
        statuses = demo.send(datasets, "127.0.0.1", settings.dicom_port, settings.ae_title)
        if any(s != 0 for s in statuses):
            raise CliError(f"demo case {case.key}: the receiver answered {[hex(s) for s in statuses]}")
    print(f"demo: {len(demo.DEMO_CASES)} cases in {DEMO_USER}'s personal folder", flush=True)


def cmd_user_add(args: argparse.Namespace) -> int:
    with _open(args) as casebank:
        password = _read_password(args.generate_password)
        with casebank.database.session() as session:
            created = users.add_user(
                session, args.name, email=args.email, gmc=args.gmc,
                display_name=args.display_name, password=password, admin=args.admin,
            )
            username = created.user.username
        print(f"created user {username} with personal folder /{username}")
        if created.generated_password:
            print(f"password: {created.generated_password}")
    return 0


def cmd_ae_bind(args: argparse.Namespace) -> int:
    if bool(args.user) == bool(args.folder):
        raise CliError("give either USER (a calling AE) or --folder PATH (a called AE)")
    with _open(args) as casebank:
        with casebank.database.session() as session:
            if args.folder:
                users.bind_called_ae(session, args.ae_title, _folder(session, args.folder))
                print(f"objects sent to called AE {args.ae_title} now file into {args.folder}")
            else:
                users.bind_ae(session, args.ae_title, users.get_user(session, args.user))
                print(f"calling AE {args.ae_title} now files into {args.user}'s personal folder")
    return 0


def _folder(session, path: str):  # type: ignore[no-untyped-def]
    folder = folder_by_path(session, path)
    if folder is None:
        raise CliError(f"no folder {path}")
    return folder


def cmd_folder_add(args: argparse.Namespace) -> int:
    with _open(args) as casebank:
        with casebank.database.session() as session:
            actor = users.get_user(session, args.owner)
            parent_path, _, name = args.path.rstrip("/").rpartition("/")
            parent = _folder(session, parent_path) if parent_path else None
            folder = create_folder(session, actor, name, FolderKind(args.kind), parent=parent)
            print(f"created {folder_path(session, folder)} ({args.kind}) owned by {actor.username}")
    return 0


def cmd_folder_limit(args: argparse.Namespace) -> int:
    with _open(args) as casebank:
        with casebank.database.session() as session:
            set_limit(session, "cli", _folder(session, args.path), args.bytes or None, hard=args.hard)
            kind = "hard" if args.hard else "warn-only"
            print(f"{args.path}: {kind} limit of {args.bytes} bytes" if args.bytes else f"{args.path}: no limit")
    return 0


def _acting_user(session, folder, username: str | None):  # type: ignore[no-untyped-def]
    """Who a folder change is made as: --by USER, else the folder's owner; rights are checked for them."""
    actor = users.get_user(session, username) if username else folder.owner
    if actor is None:
        raise CliError(f"{folder_path(session, folder)} has no owner; say who acts with --by USER")
    return actor


def cmd_folder_restrict(args: argparse.Namespace) -> int:
    with _open(args) as casebank:
        with casebank.database.session() as session:
            folder = _folder(session, args.path)
            actor = _acting_user(session, folder, args.by)
            restrict_senders(session, actor, folder, gmc_numbers=args.gmc, calling_aes=args.calling_aes)
            listed = [*args.gmc, *args.calling_aes]
            print(f"{args.path} accepts only {', '.join(listed)}" if listed else f"{args.path} accepts any sender with send rights")
    return 0


def cmd_folder_grant(args: argparse.Namespace) -> int:
    with _open(args) as casebank:
        with casebank.database.session() as session:
            folder = _folder(session, args.path)
            actor = _acting_user(session, folder, args.by)
            grant(session, actor, folder, users.get_user(session, args.user),
                  view=True, edit="edit" in args.rights, send="send" in args.rights)
            print(f"{args.user} may now {', '.join(args.rights)} {args.path}")
    return 0


def progress_bar(done: int, total: int | None, unit: str) -> None:
    """One line on stderr, redrawn while on a terminal; only the last state otherwise."""
    if not sys.stderr.isatty() and done != total:
        return
    if total is None:
        line = f"{done} {unit}"
    else:
        width = 30
        filled = width * done // max(total, 1)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}"
    print(f"\r{line:<70}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def cmd_reindex(args: argparse.Namespace) -> int:
    """Rebuild the search index from the database (OpenSearch: a new index, then the alias moves)."""
    from search.index import SearchUnavailable

    with _open(args) as casebank:
        started, total, done = time.perf_counter(), casebank.indexer.case_count(), 0

        def advance(step: int) -> None:
            nonlocal done
            done += step
            progress_bar(done, total, "cases")

        try:
            count = casebank.indexer.reindex_all(advance)
        except SearchUnavailable as exc:
            raise CliError(str(exc)) from exc
        print(f"reindexed {count} case(s) in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    _open(args).close()  # opening migrates to the newest schema
    print("database schema is up to date")
    return 0


def cmd_deid(args: argparse.Namespace) -> int:
    """De-identify a file or folder with the edge's engine; exit status 1 if any file was refused or held."""
    from ingest.deid import Profile, ProfileError
    from ingest.deid.batch import REPORT_NAME, Outcome, deidentify_files, project_key, write_report

    try:
        profile = Profile.load(args.profile) if args.profile else Profile.of(*args.option)
    except (ProfileError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    key = project_key(_settings(args).data / "projects", args.project)

    def progress(done: int, total: int, _path: Path) -> None:
        progress_bar(done, total, "files")

    output = Path(args.output)
    try:
        report = deidentify_files(Path(args.input), output, profile, key, progress)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    report_path = Path(args.report) if args.report else output / REPORT_NAME
    options = sorted(o.name for o in profile.options)
    try:
        write_report(report, report_path, input=args.input, output=args.output, profile=profile.name, options=options)
    except OSError as exc:
        raise CliError(f"cannot write the report {report_path}: {exc}") from exc
    for entry in report.failed:
        held = "held for a person: " if entry.outcome is Outcome.HELD else ""
        print(f"casebank deid: {entry.input}: {held}{' '.join(entry.reason.split())}", file=sys.stderr)
    counts = report.counts()
    print(f"de-identified {counts['written']} file(s) into {args.output} with profile {profile.name} {options}; "
          f"{counts['refused']} refused, {counts['held']} held, {counts['skipped-duplicate']} skipped as duplicates; "
          f"report: {report_path}")
    return 1 if report.failed else 0


def cmd_edge(args: argparse.Namespace) -> int:
    """Run the export manager until interrupted."""
    from ingest.deid import Profile, ProfileError
    from ingest.edge.outbox import Destination
    from ingest.edge.service import Edge, EdgeConfig

    import uvicorn

    from ..edge_app import create_edge_app

    try:
        destination = Destination.parse(args.archive)
        pacs = Destination.parse(args.pacs) if args.pacs else None
        profile = Profile.load(args.profile) if args.profile else None
    except (ProfileError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    edge = Edge(EdgeConfig(
        data=_settings(args).data, archive=destination, ae_title=args.edge_ae, port=args.edge_port, profile=profile,
        pacs=pacs, auto_release_template_cleaning=args.auto_release_template_cleaning,
    ))
    edge.start()
    host, port = _settings(args).http_host_port()
    print(f"edge {args.edge_ae} listening on port {args.edge_port}; forwarding to {args.archive}; "
          f"page at http://{host}:{port}/", flush=True)
    try:
        uvicorn.run(create_edge_app(edge), host=host, port=port, log_level="warning")
    finally:
        edge.stop()
    return 0


def cmd_edge_user_add(args: argparse.Namespace) -> int:
    from ingest.edge.users import EdgeUserError, EdgeUsers

    given = _read_password(args.generate_password)
    try:
        password = EdgeUsers(_settings(args).data / "users.json").add(
            args.name, display_name=args.display_name, gmc=args.gmc, password=given,
        )
    except EdgeUserError as exc:
        raise CliError(str(exc)) from exc
    print(f"created edge user {args.name} (GMC {args.gmc})")
    if given is None:
        print(f"password: {password}")
    return 0


def _passphrase() -> bytes:
    if sys.stdin.isatty():
        return getpass.getpass("Custodian passphrase: ").encode()
    return sys.stdin.readline().rstrip("\n").encode()


def _custody(action):  # type: ignore[no-untyped-def]
    """Run a key-custody action with CustodyError shown as a CLI error."""
    from ingest.edge.projects import CustodyError

    try:
        return action()
    except CustodyError as exc:
        raise CliError(str(exc)) from exc


def cmd_edge_keygen(args: argparse.Namespace) -> int:
    from ingest.edge.projects import generate_custodian_key

    _custody(lambda: generate_custodian_key(Path(args.private), Path(args.public), _passphrase()))
    print(f"custodian key pair written: {args.private} (keep it safe), {args.public} (give it to the edge)")
    return 0


def cmd_edge_project(args: argparse.Namespace) -> int:
    from ingest.edge.projects import Project, TrialIdentity

    public = Path(args.custodian_public_key).read_bytes()
    trial = TrialIdentity(
        protocol_id=args.protocol_id or "", protocol_name=args.protocol_name or "", sponsor=args.sponsor or "",
        site_id=args.site_id or "", site_name=args.site_name or "", coordinating_center=args.coordinating_center or "",
    )
    if trial.protocol_id and not trial.site_id:
        raise CliError("a project with a protocol ID needs this edge's --site-id (as the archive enrolled it)")
    _custody(lambda: Project.create(_settings(args).data / "projects", args.name, public, trial))
    print(f"project {args.name} created; manifests saying 'project: {args.name}' are pseudonymised with its key"
          + (f" and carry protocol {trial.protocol_id}, site {trial.site_id}" if trial.protocol_id else ""))
    return 0


def cmd_edge_reidentify(args: argparse.Namespace) -> int:
    from ingest.edge.projects import Project, reidentify

    project = _custody(lambda: Project.open(_settings(args).data / "projects", args.project))
    key = Path(args.key).read_bytes()
    print(_custody(lambda: reidentify(project, key, _passphrase(), args.reason, args.target)))
    return 0


def cmd_edge_export_maps(args: argparse.Namespace) -> int:
    from ingest.edge.projects import Project, export_maps

    project = _custody(lambda: Project.open(_settings(args).data / "projects", args.project))
    key = Path(args.key).read_bytes()
    paths = _custody(lambda: export_maps(project, key, _passphrase(), args.reason, Path(args.target)))
    print("written: " + ", ".join(map(str, paths)))
    return 0


def cmd_terminology_load(args: argparse.Namespace) -> int:
    """Load a SNOMED CT, ACR Index or RadLex release; exit status 1 if it cannot be read."""
    from archive.cases import requeue_cases_coded_in
    from terminology import TerminologyError, canonical_system

    line_open = False  # a progress line without its newline is on the terminal

    def progress(done: int, total: int | None) -> None:
        nonlocal line_open
        progress_bar(done, total, "rows read" if total is None else "concepts stored")
        line_open = done != total and sys.stderr.isatty()

    with _open(args) as casebank:
        try:
            count = casebank.terminology.load(args.system, Path(args.path), progress)
        except TerminologyError as exc:
            print(f"{chr(10) if line_open else ''}casebank terminology load: {exc}", file=sys.stderr)
            return 1
        with casebank.database.session() as session:  # their ancestors and synonyms changed
            requeued = requeue_cases_coded_in(session, args.system)
    print(f"loaded {count} {canonical_system(args.system)} concept(s) from {args.path}; "
          f"{requeued} coded case(s) reindexed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", metavar="DIR", help="data folder (CASEBANK_DATA)")
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--http", metavar="HOST:PORT", help="web UI, REST and DICOMweb (CASEBANK_HTTP)")
    server.add_argument("--dicom-port", type=int, metavar="PORT", help="DICOM receiver port (CASEBANK_DICOM_PORT)")
    server.add_argument("--ae", metavar="AE_TITLE", help="AE title of the receiver (CASEBANK_AE_TITLE)")

    parser = argparse.ArgumentParser(
        prog="casebank",
        description="Casebank: a radiology teaching-file and research archive.",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help: str, parents=(common,)):  # type: ignore[no-untyped-def]
        sub = commands.add_parser(name, help=help, description=help, parents=list(parents))
        sub.set_defaults(handler=handler)
        return sub

    add("serve", cmd_serve, "run the archive: HTTP and the DICOM receiver", (common, server))
    add("demo", cmd_demo, "serve with a demo user and demo cases", (common, server))
    add("reindex", cmd_reindex, "rebuild the search index from the database")
    add("migrate", cmd_migrate, "upgrade the database schema")

    edge = commands.add_parser("edge", help="the export manager at a hospital",
                               description="the export manager at a hospital, and its research projects")
    edge_commands = edge.add_subparsers(dest="edge_command", required=True, metavar="COMMAND")

    def add_edge(name: str, handler, help: str):  # type: ignore[no-untyped-def]
        sub = edge_commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(handler=handler)
        return sub

    run = add_edge("run", cmd_edge, "receive from the PACS, de-identify whole selections, forward through a durable outbox")
    run.add_argument("--http", metavar="HOST:PORT", help="the edge's status page (default 127.0.0.1:8000)")
    run.add_argument("--archive", required=True, metavar="AE@HOST:PORT", help="the archive's DICOM receiver")
    run.add_argument("--port", dest="edge_port", type=int, default=11113, help="DICOM port for the PACS (default 11113)")
    run.add_argument("--edge-ae", default="CASEBANK-EDGE", help="AE title of the edge (default CASEBANK-EDGE)")
    run.add_argument("--profile", metavar="FILE", help="de-identification profile (.toml/.json); default profile otherwise")
    run.add_argument("--pacs", metavar="AE@HOST:PORT", help="the local PACS the page searches (C-FIND) and fetches from (C-GET)")
    run.add_argument("--auto-release-template-cleaning", action="store_true",
                     help="let a selection sent from the PACS leave unseen when only device templates or the "
                          "ultrasound scan area changed its pixels (default: every pixel change waits for a person)")
    edge_user = add_edge("user-add", cmd_edge_user_add,
                         "add a person who may export (password on stdin; generated and printed if none)")
    edge_user.add_argument("name", help="user name (lower case)")
    edge_user.add_argument("--gmc", required=True, help="GMC number: signs the teaching-file report")
    edge_user.add_argument("--display-name", required=True, help="DICOM person name, e.g. 'Jones^Ann'")
    edge_user.add_argument("--generate-password", action="store_true", help="do not read stdin; generate one")
    keygen = add_edge("keygen", cmd_edge_keygen, "make a key pair for a project's key custodian (passphrase on stdin)")
    keygen.add_argument("private", metavar="PRIVATE.pem")
    keygen.add_argument("public", metavar="PUBLIC.pem")
    project = add_edge("project", cmd_edge_project, "add a research project whose log only its custodian can read")
    project.add_argument("name", metavar="NAME")
    project.add_argument("--custodian-public-key", required=True, metavar="PUBLIC.pem")
    for option, what in (("--protocol-id", "Clinical Trial Protocol ID, as the archive's project has it"),
                         ("--protocol-name", "Clinical Trial Protocol Name"), ("--sponsor", "Clinical Trial Sponsor Name"),
                         ("--site-id", "this hospital's Clinical Trial Site ID"), ("--site-name", "Clinical Trial Site Name"),
                         ("--coordinating-center", "Clinical Trial Coordinating Center Name")):
        project.add_argument(option, metavar="TEXT", help=what)
    for name, handler, help in (
        ("reidentify", cmd_edge_reidentify, "find the original of a pseudonym or new UID (custodian only; audited)"),
        ("export-maps", cmd_edge_export_maps, "write uid_map.csv and patient_id_map.csv (custodian only; audited)"),
    ):
        sub = add_edge(name, handler, help)
        sub.add_argument("project", metavar="PROJECT")
        sub.add_argument("target", metavar="ID" if name == "reidentify" else "OUT")
        sub.add_argument("--key", required=True, metavar="PRIVATE.pem", help="the custodian's private key")
        sub.add_argument("--reason", required=True, help="why (kept in the project's audit file)")

    deid = add("deid", cmd_deid, "de-identify DICOM files (PS3.15 Annex E) from IN into OUT")
    deid.add_argument("input", metavar="IN", help="a DICOM file or a folder")
    deid.add_argument("output", metavar="OUT", help="output folder (files named by their new UIDs)")
    deid.add_argument("--option", action="append", default=[], metavar="NAME",
                      help="a PS3.15 option, e.g. RETAIN_PATIENT_CHARACTERISTICS, CLEAN_DESCRIPTORS (repeatable)")
    deid.add_argument("--profile", metavar="FILE", help="a profile file (.toml/.json) instead of --option")
    deid.add_argument("--project", metavar="P", help="research project whose key maps UIDs and pseudonyms "
                      "consistently (default: a one-off key; irreversible)")
    deid.add_argument("--report", metavar="FILE", help="where the JSON report goes (default OUT/deid-report.json); "
                      "it names the input files and the burned-in text blanked, so keep it apart from what is shared")
    deid.epilog = ("Every input is written, held (burned-in text a person must look at), refused (with the reason) "
                   "or skipped as a duplicate; nothing in OUT is overwritten. Exit status: 0 if every file was "
                   "written or a duplicate, 1 if any was refused or held, 2 on a usage error.")

    user = commands.add_parser("user", help="manage users", description="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="COMMAND")
    user_add = user_commands.add_parser(
        "add", parents=[common],
        help="add a user (and their personal folder)",
        description="Add a user and their personal folder. The password is read from stdin; "
        "if none is given one is generated and printed.",
    )
    user_add.set_defaults(handler=cmd_user_add)
    user_add.add_argument("name", help="user name (lower case)")
    user_add.add_argument("--email", required=True)
    user_add.add_argument("--gmc", required=True, help="GMC number or equivalent professional ID")
    user_add.add_argument("--display-name", help="name shown in the UI, e.g. 'Dr A Jones'")
    user_add.add_argument("--admin", action="store_true", help="make the user an administrator")
    user_add.add_argument("--generate-password", action="store_true", help="do not read stdin; generate one")

    ae = commands.add_parser("ae", help="manage AE title bindings", description="manage AE title bindings")
    ae_commands = ae.add_subparsers(dest="ae_command", required=True, metavar="COMMAND")
    bind = ae_commands.add_parser(
        "bind", parents=[common], help="file what a calling AE sends into a user's personal folder",
        description="file what a calling AE sends into a user's personal folder",
    )
    bind.set_defaults(handler=cmd_ae_bind)
    bind.add_argument("ae_title", metavar="AE", help="calling AE title of a PACS, or a called AE title with --folder")
    bind.add_argument("user", metavar="USER", nargs="?", help="user whose personal folder receives (calling AE)")
    bind.add_argument("--folder", metavar="PATH", help="file what is sent TO this called AE title into PATH")

    folder = commands.add_parser("folder", help="manage folders", description="manage folders")
    folder_commands = folder.add_subparsers(dest="folder_command", required=True, metavar="COMMAND")
    add_folder = folder_commands.add_parser("add", parents=[common], help="create a folder", description="create a folder")
    add_folder.set_defaults(handler=cmd_folder_add)
    add_folder.add_argument("path", metavar="PATH", help="/Parent/Name")
    add_folder.add_argument("--owner", required=True, help="user who owns it (an admin for top-level folders)")
    add_folder.add_argument("--kind", default="shared", choices=[k.value for k in FolderKind if k is not FolderKind.INBOX])
    limit = folder_commands.add_parser(
        "limit", parents=[common], help="set a folder's storage limit",
        description="Set a folder's storage limit. The owner is mailed once when it is crossed; "
        "with --hard, stores that would cross it are refused (DICOM status A700).",
    )
    limit.set_defaults(handler=cmd_folder_limit)
    limit.add_argument("path", metavar="PATH")
    limit.add_argument("bytes", type=int, help="limit in bytes; 0 removes it")
    limit.add_argument("--hard", action="store_true", help="refuse stores beyond the limit")
    restrict = folder_commands.add_parser(
        "restrict", parents=[common], help="let only listed senders send to a folder",
        description="Let only the listed GMC numbers and calling AE titles send to a folder "
        "(no --gmc and no --ae lifts the restriction). Needs edit rights on the folder.",
    )
    restrict.set_defaults(handler=cmd_folder_restrict)
    restrict.add_argument("path", metavar="PATH")
    restrict.add_argument("--gmc", action="append", default=[], help="a GMC number (repeatable)")
    restrict.add_argument("--ae", dest="calling_aes", action="append", default=[], help="a calling AE title (repeatable)")
    restrict.add_argument("--by", metavar="USER", help="who restricts (default: the folder's owner)")
    grant_cmd = folder_commands.add_parser("grant", parents=[common], help="give a user rights on a folder",
                                           description="give a user rights on a folder and its sub-folders")
    grant_cmd.set_defaults(handler=cmd_folder_grant)
    grant_cmd.add_argument("path", metavar="PATH")
    grant_cmd.add_argument("user", metavar="USER")
    grant_cmd.add_argument("rights", nargs="+", choices=["view", "edit", "send"])
    grant_cmd.add_argument("--by", metavar="USER", help="who grants (default: the folder's owner)")

    terminology = commands.add_parser("terminology", help="code systems: ICD-10 (built in), SNOMED CT, ACR Index, RadLex",
                                      description="code systems: ICD-10 (built in), SNOMED CT, ACR Index, RadLex")
    terminology_commands = terminology.add_subparsers(dest="terminology_command", required=True, metavar="COMMAND")
    terminology_load = terminology_commands.add_parser(
        "load", parents=[common], help="load a code system release (replaces an earlier one)",
        description="Load a code system release, replacing an earlier load of that system. SNOMED: the unzipped "
        "RF2 release folder (Snapshot tables); ACR: a CSV with a header 'code,display[,parent]'; "
        "RADLEX: the CSV BioPortal exports (Class ID, Preferred Label, Synonyms, Parents).",
    )
    terminology_load.set_defaults(handler=cmd_terminology_load)
    terminology_load.add_argument("system", metavar="SYSTEM", help="SNOMED, ACR or RADLEX (or a DICOM designator: SCT)")
    terminology_load.add_argument("path", metavar="PATH", help="release folder (SNOMED) or CSV file (ACR, RADLEX)")
    from . import accounts, ae_registry, archive_moves, forwarding, research  # noqa: PLC0415 (their modules import this package's helpers)

    accounts.register(commands, user_commands, common)
    ae_registry.register(ae_commands, common)
    research.register(commands, common)
    archive_moves.register(commands, common)
    forwarding.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    long_running = args.command in ("serve", "demo")
    logging.basicConfig(
        level=logging.INFO if long_running else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except (ArchiveError, CliError) as exc:
        print(f"casebank {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
