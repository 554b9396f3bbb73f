"""Private attributes known to be safe: PS3.15 Table E.3.10-1 as data, extendable per site.

A private element is identified by its group, its Private Creator and the low byte of its
element number (``(0019,xx23)`` under ``GEMS_ACQU_01``), never by its full tag: the block a
creator reserves (``xx``) differs between files.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

_PRIVATE_TAG = re.compile(r"^\(([0-9A-Fa-f]{4}),xx([0-9A-Fa-f]{2})\)$")
DEFAULT_LIST = "safe_private_attributes.csv"


class SafePrivateError(ValueError):
    """A safe private entry is malformed; the message names the entry."""


@dataclass(frozen=True)
class SafePrivateElement:
    """One private attribute known to be safe.

    Attributes
    ----------
    group : int
        Odd group number, e.g. ``0x0019``.
    creator : str
        Private Creator value, e.g. ``"GEMS_ACQU_01"``.
    element : int
        Low byte of the element number (the ``xx23`` of ``(0019,xx23)``).
    vr : str
        Expected VR; empty when the source table gives none. A mismatching explicit VR is not
        retained.
    meaning : str
        What the vendor says it holds.
    """

    group: int
    creator: str
    element: int
    vr: str = ""
    meaning: str = ""

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any]) -> SafePrivateElement:
        """From a CSV row or a profile's ``[[safe_private]]`` table (``tag``, ``private_creator``, ``vr``)."""
        tag = str(entry.get("tag", ""))
        match = _PRIVATE_TAG.match(tag.strip())
        creator = str(entry.get("private_creator", "")).strip()
        if match is None or not creator:
            raise SafePrivateError(
                f"safe private entry {dict(entry)!r} needs tag like '(0019,xx23)' and a private_creator"
            )
        group = int(match.group(1), 16)
        if group % 2 == 0:
            raise SafePrivateError(f"safe private entry {tag}: group {group:04X} is not private (odd)")
        return cls(group, creator, int(match.group(2), 16), str(entry.get("vr", "")).strip(), str(entry.get("meaning", "")))


class SafePrivateList:
    """The set of private attributes to keep under the Retain Safe Private option."""

    def __init__(self, entries: Iterable[SafePrivateElement]) -> None:
        self._entries = tuple(entries)
        self._vr: dict[tuple[int, str, int], str] = {(e.group, e.creator, e.element): e.vr for e in self._entries}
        self._creators = frozenset((e.group, e.creator) for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._entries)

    def has_creator(self, group: int, creator: str) -> bool:
        """Whether any element of this creator's block may be safe."""
        return (group, creator.strip()) in self._creators

    def is_safe(self, group: int, creator: str, element: int, vr: str) -> bool:
        """Whether the element ``element`` (low byte) of ``creator``'s block in ``group`` is safe."""
        expected = self._vr.get((group, creator.strip(), element & 0xFF))
        if expected is None:
            return False
        # An implicit-VR file gives UN for private elements; the creator and element decide then.
        return not expected or vr in (expected, "UN")

    def expected_vr(self, group: int, creator: str, element: int) -> str:
        """The VR the list gives for a safe element; ``""`` if none or not listed."""
        return self._vr.get((group, creator.strip(), element & 0xFF), "")

    def extended(self, entries: Iterable[SafePrivateElement]) -> SafePrivateList:
        """This list plus site additions."""
        return SafePrivateList((*self._entries, *entries))


@lru_cache(maxsize=1)
def default_safe_private() -> SafePrivateList:
    """The sample list of PS3.15 Table E.3.10-1 shipped in ``data/``."""
    text = files(__package__).joinpath("data", DEFAULT_LIST).read_text(encoding="utf-8")
    return SafePrivateList(SafePrivateElement.from_mapping(row) for row in csv.DictReader(io.StringIO(text)))
