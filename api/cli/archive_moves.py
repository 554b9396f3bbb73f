"""`casebank export-archive DIR`, `import-archive DIR` and `send-archive --to AE@HOST:PORT`: a
whole archive out at contract end (to a folder, or to another vendor's TCE receiver), and into an
empty (or an existing) archive. See archive/migration.py for the format."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import open_casebank


def cmd_export_archive(args: argparse.Namespace) -> int:
    from archive.migration import export_archive

    from . import progress_bar

    with open_casebank(args) as casebank:
        counts = export_archive(casebank, Path(args.folder), lambda done, total, unit: progress_bar(done, total, unit))
    print(f"exported {counts.cases} case(s) with {counts.instances} instance(s)"
          + (f", {counts.cases_skipped} already done by an earlier run" if counts.cases_skipped else "")
          + f", {counts.attachments} attachment(s), {sum(counts.rows.values())} catalogue rows to {args.folder}")
    return 0


def cmd_import_archive(args: argparse.Namespace) -> int:
    from archive.migration import import_archive

    from . import progress_bar

    with open_casebank(args) as casebank:
        counts = import_archive(casebank, Path(args.folder), lambda done, total, unit: progress_bar(done, total, unit))
    matched = sum(counts.matched.values())
    print(f"imported {counts.rows.get('cases', 0)} case(s), {counts.rows.get('users', 0)} new user(s), "
          f"{sum(counts.rows.values())} rows in all, {counts.blobs} file(s)"
          + (f"; {matched} row(s) matched existing ones (users by GMC number, folders by path)" if matched else "")
          + ". Imported users have no password yet: set one with `casebank user password NAME`.")
    return 0


def cmd_send_archive(args: argparse.Namespace) -> int:
    from archive.migration import send_archive
    from ingest.edge.outbox import Destination

    from . import progress_bar
    from .common import CliError

    try:
        destination = Destination.parse(args.to)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    with open_casebank(args) as casebank:
        counts = send_archive(casebank, destination, lambda done, total, unit: progress_bar(done, total, unit),
                              calling_ae=args.calling_ae)
    print(f"sent {counts.objects} object(s) of {counts.cases} case(s) to {args.to}"
          + (f"; {counts.already_queued} case(s) queued by an earlier run" if counts.already_queued else ""))
    for case_id, why in counts.not_sent.items():
        print(f"case {case_id} not sent: {why}")
    for refusal in counts.refused:
        print(f"refused by {args.to}: {refusal['name']}: {refusal['reason']}")
    return 1 if counts.refused else 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    out = commands.add_parser("export-archive", parents=[common],
                              help="write the whole archive to a folder: DICOM per case and a JSON catalogue (resumable)")
    out.set_defaults(handler=cmd_export_archive)
    out.add_argument("folder", metavar="DIR")
    into = commands.add_parser("import-archive", parents=[common],
                               help="restore an exported archive (into an empty archive, or merged: users by GMC)")
    into.set_defaults(handler=cmd_import_archive)
    into.add_argument("folder", metavar="DIR")
    send = commands.add_parser("send-archive", parents=[common],
                               help="send every case as a TCE submission to another vendor's receiver (resumable)")
    send.set_defaults(handler=cmd_send_archive)
    send.add_argument("--to", required=True, metavar="AE@HOST:PORT", help="the receiving archive")
    send.add_argument("--calling-ae", default="CASEBANK", help="our AE title towards it (default CASEBANK)")
