"""`casebank user ...` and `casebank token ...` commands beyond `user add` (accounts and tokens)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction, user_commands: argparse._SubParsersAction,  # type: ignore[type-arg]
             common: argparse.ArgumentParser) -> None:
    """Adds account commands to the parser; nothing yet."""
