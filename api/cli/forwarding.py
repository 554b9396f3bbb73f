"""`casebank destination ...`: the archives editors may forward cases to (admins, at the console).

The console acts as the admin (audited as ``cli``). A running archive picks a new destination up on
the first forward to it; ``casebank serve`` starts the outboxes of all of them.
"""

from __future__ import annotations

import argparse

from archive import forwarding

from .common import CliError, open_casebank


def cmd_destination_add(args: argparse.Namespace) -> int:
    if bool(args.dicom) == bool(args.stow):
        raise CliError("give either --dicom AE@HOST:PORT or --stow URL")
    if args.tls and not args.dicom:
        raise CliError("--tls is for a DICOM destination (a STOW-RS URL says https:// itself)")
    if args.token and not args.stow:
        raise CliError("--token is for a STOW-RS destination")
    with open_casebank(args) as casebank, casebank.database.session() as session:
        destination = forwarding.add_destination(session, "cli", args.name, dicom=args.dicom, tls=args.tls,
                                                 stow_url=args.stow, token=args.token or "")
        print(f"destination {destination.name} added: {forwarding.describe(destination)}")
    return 0


def cmd_destination_list(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        rows = forwarding.list_destinations(session)
        if not rows:
            print("no destinations")
        for destination in rows:
            token = " (bearer token set)" if destination.bearer_token else ""
            print(f"{destination.name}\t{destination.kind}\t{forwarding.describe(destination)}{token}")
    return 0


def cmd_destination_remove(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        forwarding.remove_destination(session, "cli", args.name)
        print(f"destination {args.name} removed (anything still waiting in its outbox stays on disk)")
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    destination = commands.add_parser(
        "destination", help="archives editors may forward cases to",
        description="Archives editors may forward cases to: over DICOM (C-STORE, optionally TLS) or DICOMweb STOW-RS.",
    )
    sub = destination.add_subparsers(dest="destination_command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", parents=[common], help="add a destination",
                         description="Add a destination: --dicom AE@HOST:PORT [--tls] or --stow URL [--token T].")
    add.set_defaults(handler=cmd_destination_add)
    add.add_argument("name", help="how editors choose it; also its outbox folder's name")
    add.add_argument("--dicom", metavar="AE@HOST:PORT", help="the other archive's DICOM receiver")
    add.add_argument("--tls", action="store_true", help="DICOM over TLS (the system's trusted CAs)")
    add.add_argument("--stow", metavar="URL", help="the other archive's DICOMweb base, e.g. https://host/dicomweb")
    add.add_argument("--token", metavar="T", help="bearer token for STOW-RS")
    listing = sub.add_parser("list", parents=[common], help="list the destinations")
    listing.set_defaults(handler=cmd_destination_list)
    remove = sub.add_parser("remove", parents=[common], help="remove a destination")
    remove.set_defaults(handler=cmd_destination_remove)
    remove.add_argument("name")
