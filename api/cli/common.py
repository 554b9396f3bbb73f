"""What every `casebank` command module shares: settings from arguments, opening the archive."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings import Settings

if TYPE_CHECKING:
    from ..runtime import Casebank


class CliError(Exception):
    pass


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data", None):
        overrides["data"] = Path(args.data)
    if getattr(args, "http", None):
        overrides["http"] = args.http
    if getattr(args, "dicom_port", None):
        overrides["dicom_port"] = args.dicom_port
    if getattr(args, "ae", None):
        overrides["ae_title"] = args.ae
    return Settings(**overrides)


def open_casebank(args: argparse.Namespace) -> Casebank:
    from ..runtime import Casebank  # imported on use: DICOM and migration libraries are slow to load

    return Casebank.open(settings_from(args))


def read_password(generate: bool) -> str | None:
    if generate or sys.stdin is None:
        return None
    if sys.stdin.isatty():
        first = getpass.getpass("Password (empty to generate one): ")
        if not first:
            return None
        if getpass.getpass("Again: ") != first:
            raise CliError("the passwords differ")
        return first
    line = sys.stdin.readline().rstrip("\n")
    return line or None
