"""Cleaning free text that a profile keeps (Clean Descriptors, Clean Structured Content).

A :class:`Scrubber` is built from the original object: the names and identifiers listed in
``data/identifying_values.json``, every date in the header, and NHS-number-shaped identifiers.
It removes each of them from a text wherever it stands as a whole token (not inside a longer
word or number), case-insensitively, and reports how many it removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

NHS_NUMBER = re.compile(r"(?<![0-9])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![0-9])")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_NAME_SPLIT = re.compile(r"[\^=\s,]+")
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class IdentifyingValues:
    """Which attributes' values are removed from kept free text (``data/identifying_values.json``)."""

    names: frozenset[str]
    identifiers: frozenset[str]
    min_name_part_length: int
    min_identifier_length: int


@lru_cache(maxsize=1)
def identifying_values() -> IdentifyingValues:
    data = json.loads(files(__package__).joinpath("data", "identifying_values.json").read_text(encoding="utf-8"))
    return IdentifyingValues(
        frozenset(data["names"]), frozenset(data["identifiers"]),
        int(data["min_name_part_length"]), int(data["min_identifier_length"]),
    )


def is_nhs_number(digits: str) -> bool:
    """Ten digits whose modulus-11 check digit is right (NHS Digital's rule)."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def date_forms(yyyymmdd: str) -> set[str]:
    """Common written forms of a date: ``20210304``, ``2021-03-04``, ``04/03/2021``, ``4 March 2021``..."""
    y, m, d = yyyymmdd[:4], yyyymmdd[4:6], yyyymmdd[6:8]
    if not (y + m + d).isdigit() or not (1 <= int(m) <= 12 and 1 <= int(d) <= 31):
        return set()
    month, short = _MONTHS[int(m) - 1], _MONTHS[int(m) - 1][:3]
    dn, mn = str(int(d)), str(int(m))
    forms = {f"{y}{m}{d}", f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}"}
    for day, mon in ((d, m), (dn, mn)):
        forms |= {f"{day}/{mon}/{y}", f"{day}-{mon}-{y}", f"{day}.{mon}.{y}", f"{mon}/{day}/{y}", f"{day}/{mon}/{y[2:]}"}
    for day in (d, dn):
        forms |= {f"{day} {month} {y}", f"{day} {short} {y}", f"{day}-{short}-{y}", f"{month} {day}, {y}", f"{short} {day}, {y}"}
    return forms


class Scrubber:
    """Removes a patient's names, identifiers and dates from free text."""

    def __init__(self, tokens: Iterable[str]) -> None:
        unique = sorted({t for t in tokens if t}, key=lambda t: (-len(t), t))
        self._pattern = (
            re.compile(r"(?<![0-9A-Za-z])(?:" + "|".join(map(re.escape, unique)) + r")(?![0-9A-Za-z])", re.IGNORECASE)
            if unique else None
        )

    @classmethod
    def from_dataset(cls, ds: Dataset) -> Scrubber:
        """A scrubber for the identifying values found anywhere in ``ds``."""
        rules = identifying_values()
        return cls(_tokens(ds, rules))

    def scrub(self, text: str) -> tuple[str, int]:
        """``text`` without identifying tokens, and how many were removed."""
        removed = 0
        if self._pattern is not None:
            text, removed = self._pattern.subn("", text)
        spans = [m.span() for m in NHS_NUMBER.finditer(text) if is_nhs_number("".join(m.groups()))]
        for start, end in reversed(spans):
            text = text[:start] + text[end:]
        removed += len(spans)
        if removed:
            text = _SPACES.sub(" ", text).strip()
        return text, removed


def _tokens(ds: Dataset, rules: IdentifyingValues) -> Iterator[str]:
    for elem in ds.iterall():
        keyword, vr = elem.keyword, elem.VR
        if vr in ("DA", "DT"):
            for value in _values(elem.value):
                yield from date_forms(value.strip()[:8])
        elif keyword in rules.names:
            for value in _values(elem.value):
                yield from _name_parts(value, rules.min_name_part_length)
        elif keyword in rules.identifiers:
            for value in _values(elem.value):
                if len(value.strip()) >= rules.min_identifier_length:
                    yield value.strip()


def _name_parts(name: str, min_length: int) -> Iterator[str]:
    for part in _NAME_SPLIT.split(name):
        for piece in (part, *part.split("-")):
            piece = piece.strip(" .")
            if len(piece) >= min_length:
                yield piece


def _values(value: object) -> Iterator[str]:
    if value is None:
        return
    if isinstance(value, MultiValue | list | tuple):  # a PersonName is iterable too, but one value
        yield from (str(item) for item in value if item is not None)
    else:
        yield str(value)
