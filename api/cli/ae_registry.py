"""`casebank ae add/list/remove`: the AE registry of calling AE titles and how far each is trusted."""

from __future__ import annotations

import argparse

from archive import senders, users
from archive.models import AeTrust

from .common import open_casebank

TRUST_HELP = (
    "edge: a Casebank (or other IHE TCE) export manager, whose reports' authors are believed; "
    "pacs: a PACS the admin trusts to sign teaching files for its users; "
    "user: a workstation or script, filed under its bound user (claimed authors kept as text)"
)


def cmd_ae_add(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        entry = senders.register_ae(session, args.ae_title, AeTrust(args.trust), host=args.host or "",
                                    description=args.description or "")
        if args.user:
            users.bind_ae(session, entry.ae_title, users.get_user(session, args.user))
        where = f"from {entry.host}" if entry.host else "from any address"
        bound = f", filing under {args.user}" if args.user else ""
        print(f"calling AE {entry.ae_title} registered as {entry.trust.value} ({where}{bound})")
    return 0


def cmd_ae_list(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        entries = senders.registered_aes(session)
        if not entries:
            print("no AE titles are registered")
        for entry in entries:
            print(f"{entry.ae_title:<16} {entry.trust.value:<5} {entry.host or '(any address)':<24} {entry.description}")
    return 0


def cmd_ae_remove(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        senders.unregister_ae(session, args.ae_title)
        print(f"calling AE {args.ae_title} is no longer registered")
    return 0


def register(ae_commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    add = ae_commands.add_parser(
        "add", parents=[common], help="register a calling AE title and how far it is trusted",
        description="Register a calling AE title in the AE registry. " + TRUST_HELP + ". With --host, "
        "an association using this title from any other address is treated as an unknown AE.",
    )
    add.set_defaults(handler=cmd_ae_add)
    add.add_argument("ae_title", metavar="AE")
    add.add_argument("--trust", required=True, choices=[t.value for t in AeTrust], help="edge, pacs or user")
    add.add_argument("--host", help="the host name or address it connects from (recommended)")
    add.add_argument("--user", metavar="USER", help="also file what it sends (without other routing) under USER")
    add.add_argument("--description", help="what it is, e.g. 'St Elsewhere export manager'")
    listing = ae_commands.add_parser("list", parents=[common], help="list the registered AE titles",
                                     description="list the registered AE titles")
    listing.set_defaults(handler=cmd_ae_list)
    remove = ae_commands.add_parser("remove", parents=[common], help="remove an AE title from the registry",
                                    description="remove an AE title from the registry")
    remove.set_defaults(handler=cmd_ae_remove)
    remove.add_argument("ae_title", metavar="AE")
