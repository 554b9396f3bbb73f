"""`casebank token ...` and the `casebank user ...` commands beyond `user add`: bearer tokens
(issue, list, revoke), disabling and enabling accounts, and setting a password."""

from __future__ import annotations

import argparse
from datetime import datetime

from archive import users
from archive.models import ApiToken

from .common import CliError, open_casebank, read_password


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _token_line(token: ApiToken) -> str:
    state = "revoked" if token.revoked_at else "active"
    return (f"{token.id}\t{token.name or '-'}\t{state}\tcreated {_when(token.created_at)}\t"
            f"expires {_when(token.expires_at) if token.expires_at else 'never'}\tlast used {_when(token.last_used_at)}")


def cmd_token(args: argparse.Namespace) -> int:
    if args.revoke:
        return _revoke(args)
    if not args.user:
        raise CliError("name the user: casebank token NAME (or --revoke TOKEN)")
    with open_casebank(args) as casebank, casebank.database.session() as session:
        user = users.get_user(session, args.user)
        if args.list:
            for token in users.tokens_of(session, user):
                print(_token_line(token))
            return 0
        days = args.days if args.days is not None else casebank.settings.token_days
        if days <= 0:
            raise CliError("--days must be more than 0")
        print(users.issue_token(session, user, name=args.label or "", days=days, actor="cli"))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        if args.user:  # a user's token by its id or name, as `--list` shows them
            revoked = users.revoke_token(session, user=users.get_user(session, args.user), which=args.revoke)
        else:  # the token's own value
            revoked = users.revoke_token(session, token=args.revoke)
        for token in revoked:
            print(f"revoked token {token.id} ({token.name or 'unnamed'}) of {token.user.username}")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        users.set_disabled(session, users.get_user(session, args.name), True)
    print(f"disabled {args.name}: its sessions are ended and its tokens refused")
    return 0


def cmd_user_enable(args: argparse.Namespace) -> int:
    with open_casebank(args) as casebank, casebank.database.session() as session:
        users.set_disabled(session, users.get_user(session, args.name), False)
    print(f"enabled {args.name}")
    return 0


def cmd_user_password(args: argparse.Namespace) -> int:
    password = read_password(generate=False)
    if not password:
        raise CliError("give the new password on standard input")
    with open_casebank(args) as casebank, casebank.database.session() as session:
        users.set_password(session, users.get_user(session, args.name), password)
    print(f"password of {args.name} changed; its sessions are ended")
    return 0


def register(commands: argparse._SubParsersAction, user_commands: argparse._SubParsersAction,  # type: ignore[type-arg]
             common: argparse.ArgumentParser) -> None:
    """Adds `token` and `user disable|enable|password` to the parser."""
    token = commands.add_parser(
        "token", parents=[common], help="make, list or revoke bearer tokens",
        description="Print a new bearer token for USER (valid CASEBANK_TOKEN_DAYS days unless --days), "
        "list a user's tokens with --list, or revoke one with --revoke (a token's value, or with USER "
        "the id or name --list shows).",
    )
    token.set_defaults(handler=cmd_token)
    token.add_argument("user", nargs="?", metavar="USER", help="user name")
    token.add_argument("--name", dest="label", metavar="LABEL", help="what the token is for, e.g. 'ohif'")
    token.add_argument("--days", type=float, metavar="N", help="days until it expires")
    token.add_argument("--list", action="store_true", help="list USER's tokens instead")
    token.add_argument("--revoke", metavar="TOKEN|ID|NAME", help="revoke a token instead")

    for name, handler, help_text in (
        ("disable", cmd_user_disable, "refuse a user's logins and tokens and end their sessions"),
        ("enable", cmd_user_enable, "let a disabled user log in again"),
        ("password", cmd_user_password, "set a user's password (read from standard input) and end their sessions"),
    ):
        sub = user_commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("name", metavar="NAME", help="user name")
