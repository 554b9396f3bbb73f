"""PS3.15 Table E.1-1 (Basic Profile and options), read from the CSV shipped in ``data/``.

The CSV is the 2024b table (one row per attribute, one column per option); an empty option cell
means the option leaves the Basic Profile action unchanged. Four rows are patterns rather than
tags: Curve Data ``(50XX,XXXX)``, Overlay Data ``(60XX,3000)``, Overlay Comments
``(60XX,4000)`` and private attributes ``(GGGG,EEEE) WHERE GGGG IS ODD``.
"""

from __future__ import annotations

import csv
import io
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from types import MappingProxyType

from .profile import Option

TABLE_FILE = "table_E1-1_basic_profile_2024b.csv"

ACTIONS = frozenset({"D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"})
"""Every action code of PS3.15 E.1.1 the engine implements."""

COMBINED_ACTIONS = frozenset(action for action in ACTIONS if "/" in action)

TYPE_STRENGTH = {"1": 0, "1C": 1, "2": 2, "2C": 3, "3": 4}
"""Attribute Types of PS3.3, strongest (most required) first."""

COLUMN_OF_OPTION: Mapping[Option, str] = MappingProxyType({
    Option.RETAIN_SAFE_PRIVATE: "retain_safe_private",
    Option.RETAIN_UIDS: "retain_uids",
    Option.RETAIN_DEVICE_IDENTITY: "retain_device_identity",
    Option.RETAIN_INSTITUTION_IDENTITY: "retain_institution_identity",
    Option.RETAIN_PATIENT_CHARACTERISTICS: "retain_patient_characteristics",
    Option.RETAIN_LONGITUDINAL_FULL_DATES: "retain_long_full_dates",
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: "retain_long_modified_dates",
    Option.CLEAN_DESCRIPTORS: "clean_descriptors",
    Option.CLEAN_STRUCTURED_CONTENT: "clean_structured_content",
    Option.CLEAN_GRAPHICS: "clean_graphics",
})

_EXACT = re.compile(r"^\(([0-9A-F]{4}),([0-9A-F]{4})\)$")


class TableError(ValueError):
    """The table data has a row the engine cannot use; the message names the row."""


class PatternKind(enum.Enum):
    """What a row's tag column designates."""

    TAG = "tag"
    CURVE = "curve"  # (50XX,XXXX): every element of the even groups 5000-501E
    OVERLAY = "overlay"  # (60XX,eeee): one element of the even groups 6000-601E
    PRIVATE = "private"  # every element of an odd group


@dataclass(frozen=True)
class TagPattern:
    """The tag or tag pattern of a table row."""

    kind: PatternKind
    tag: int | None = None
    element: int | None = None

    @classmethod
    def parse(cls, text: str) -> TagPattern:
        cleaned = text.strip().upper()
        match = _EXACT.match(cleaned)
        if match:
            return cls(PatternKind.TAG, int(match.group(1) + match.group(2), 16))
        if cleaned == "(50XX,XXXX)":
            return cls(PatternKind.CURVE)
        overlay = re.match(r"^\(60XX,([0-9A-F]{4})\)$", cleaned)
        if overlay:
            return cls(PatternKind.OVERLAY, element=int(overlay.group(1), 16))
        if cleaned.startswith("(GGGG,EEEE)") and "ODD" in cleaned:
            return cls(PatternKind.PRIVATE)
        raise TableError(f"tag {text!r} is neither a tag nor a pattern the engine knows")


@dataclass(frozen=True)
class TableRow:
    """One row of Table E.1-1.

    Attributes
    ----------
    name : str
        Attribute name as in the standard.
    tag : str
        Tag column as printed, e.g. ``"(0008,0050)"``.
    pattern : TagPattern
        The parsed tag or pattern.
    in_standard_composite_iod : bool
        Whether the attribute is used in a Standard Composite IOD.
    basic : str
        Basic Profile action code.
    option_actions : Mapping[Option, str]
        Action of each option that changes the basic action.
    """

    name: str
    tag: str
    pattern: TagPattern
    in_standard_composite_iod: bool
    basic: str
    option_actions: Mapping[Option, str]


def parse_row(record: Mapping[str, str]) -> TableRow:
    """A table row from one CSV record; :class:`TableError` if an action is unknown."""
    name, tag = record["attribute_name"].strip(), record["tag"].strip()
    actions = {option: record[column].strip() for option, column in COLUMN_OF_OPTION.items() if record[column].strip()}
    for action in (record["basic_profile"].strip(), *actions.values()):
        if action not in ACTIONS:
            raise TableError(f"Table E.1-1 row {name} {tag}: unknown action {action!r}")
    return TableRow(
        name=name,
        tag=tag,
        pattern=TagPattern.parse(tag),
        in_standard_composite_iod=record["in_std_comp_iod"].strip() == "Y",
        basic=record["basic_profile"].strip(),
        option_actions=MappingProxyType(actions),
    )


@lru_cache(maxsize=1)
def load_table() -> tuple[TableRow, ...]:
    """Every row of the shipped Table E.1-1."""
    text = files(__package__).joinpath("data", TABLE_FILE).read_text(encoding="utf-8")
    return tuple(parse_row(record) for record in csv.DictReader(io.StringIO(text)))
