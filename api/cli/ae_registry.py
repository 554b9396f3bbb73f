"""`casebank ae add/list/remove`: the AE registry of calling AE titles and how far each is trusted."""

from __future__ import annotations

import argparse


def register(ae_commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Adds AE registry commands to the parser; nothing yet."""
