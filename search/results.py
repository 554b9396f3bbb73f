"""What both backends share around a search: filter grouping, facet names and bucket shaping."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .index import KEYWORD_FIELDS, FacetValue
from .query import QueryError, normalise_keyword

CUSTOM_PREFIX = "custom."
CUSTOM_NAME = re.compile(r"^[A-Za-z0-9_]+$")
SNIPPET_FIELDS = ("findings", "history", "diagnosis", "discussion", "differential", "title", "keywords_text",
                  "codes_text", "study_description")
"""Where a snippet is looked for, in this order: the first field with a match gives it."""


def facet_field(name: str) -> str:
    """The index field a facet counts: ``custom.NAME`` counts ``custom``."""
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return "custom"
    if name not in KEYWORD_FIELDS or name == "custom":
        raise QueryError(f"cannot count {name!r}; facets are {', '.join(KEYWORD_FIELDS[:-1])} and custom.NAME")
    return name


NUMBER = r"-?\d+(?:\.\d+)?"
DATE = r"\d{4}-\d{2}-\d{2}"
RANGE = re.compile(rf"^\s*(?P<low>{NUMBER}|{DATE})?\s*\.\.\s*(?P<high>{NUMBER}|{DATE})?\s*$")


@dataclass(frozen=True)
class Range:
    """``custom.NAME:LOW..HIGH`` on a number or date field, both ends inclusive, either open."""

    name: str
    low: float | None
    high: float | None


def range_value(text: str | None) -> float | None:
    """A bound as indexed: numbers as they are, ISO dates as the number YYYYMMDD."""
    if not text:
        return None
    return float(text.replace("-", "")) if re.fullmatch(DATE, text) else float(text)


def filter_term(name: str, value: str) -> tuple[str, str]:
    """``(field, value)`` as stored: ``custom.NAME`` becomes ``("custom", "NAME=value")``."""
    field = facet_field(name)
    if field == "custom":
        return field, f"{name[len(CUSTOM_PREFIX):]}={value.strip()}"
    return field, normalise_keyword(field, value)


def grouped_filters(filters: Iterable[tuple[str, str]]) -> list[tuple[str, list[str | Range]]]:
    """Filters as ``(index field, values)`` groups: values of one facet are alternatives (OR), the
    groups are all required (AND). Each custom field is a group of its own; a custom field's
    value ``LOW..HIGH`` is a :class:`Range` (numbers, or dates as YYYY-MM-DD)."""
    grouped: dict[str, tuple[str, list[str | Range]]] = {}
    for name, value in filters:
        field, stored = filter_term(name, value)
        match = RANGE.match(value) if field == "custom" else None
        if match and (match.group("low") or match.group("high")):
            term: str | Range = Range(name[len(CUSTOM_PREFIX):], range_value(match.group("low")),
                                      range_value(match.group("high")))
        else:
            term = stored
        grouped.setdefault(name, (field, []))[1].append(term)
    return list(grouped.values())


def facet_values(name: str, buckets: Mapping[str, int], size: int) -> list[FacetValue]:
    """Counts sorted by count then value; for ``custom.NAME`` only that field's values."""
    if name.startswith(CUSTOM_PREFIX):
        prefix = name[len(CUSTOM_PREFIX):] + "="
        buckets = {k[len(prefix):]: v for k, v in buckets.items() if k.startswith(prefix)}
    ordered = sorted(buckets.items(), key=lambda item: (-item[1], item[0]))
    return [FacetValue(value, count) for value, count in ordered[:size] if count > 0]
