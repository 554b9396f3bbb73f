"""User query text to a small tree both backends translate the same way.

The text is Lucene-style, parsed with luqum: words (AND by default), ``"phrases"``, ``prefix*``,
``fuzzy~`` / ``fuzzy~1``, ``field:term``, ``AND`` / ``OR`` / ``NOT``, ``-excluded``, and
parentheses. Text a user typed that is not valid syntax is searched as plain words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser

from terminology.systems import canonical_system

from .index import KEYWORD_FIELDS, QUERY_FIELD_ALIASES, TEXT_FIELDS

UPPER_KEYWORDS = frozenset({"modality", "body_part", "sex"})
WORD = re.compile(r"[\w.]+", re.UNICODE)


class QueryError(ValueError):
    """The query names a field that does not exist or uses syntax not supported; says which."""


@dataclass(frozen=True)
class Term:
    """One term. ``field`` None means every text field. ``kind``: word, phrase, prefix, fuzzy."""

    field: str | None
    text: str
    kind: str = "word"
    distance: int = 0

    @property
    def is_keyword(self) -> bool:
        return self.field is not None and self.field in KEYWORD_FIELDS


@dataclass(frozen=True)
class Bool:
    must: tuple[Node, ...] = ()
    should: tuple[Node, ...] = ()
    must_not: tuple[Node, ...] = ()


@dataclass(frozen=True)
class MatchAll:
    pass


Node = Term | Bool | MatchAll


def normalise_keyword(field: str, value: str) -> str:
    """Keyword values as stored: modality, body part and sex upper case, keywords lower case,
    the system of a ``SYSTEM|CODE`` upper case."""
    value = value.strip()
    if field in UPPER_KEYWORDS:
        return value.upper()
    if field == "keyword":
        return value.lower()
    if field == "code" and "|" in value:
        system, _, code = value.partition("|")
        return f"{canonical_system(system)}|{code.strip()}"
    return value


def fuzzy_distance(text: str) -> int:
    """OpenSearch's AUTO: exact up to 2 characters, 1 edit up to 5, else 2."""
    return 0 if len(text) <= 2 else 1 if len(text) <= 5 else 2


def is_everything(text: str) -> bool:
    """An empty query or a bare ``*``: every case the user may see."""
    return text.strip() in ("", "*")


def parse(text: str) -> Node:
    text = text.strip()
    if is_everything(text):
        return MatchAll()
    try:
        parsed = parser.parse(text)
    except (ParseError, TypeError, ValueError):
        words = [w for w in WORD.findall(text) if w not in ("AND", "OR", "NOT")]
        return Bool(must=tuple(Term(None, w) for w in words)) if words else MatchAll()
    return _convert(parsed, None)


def _field(name: str) -> str:
    name = QUERY_FIELD_ALIASES.get(name.lower(), name.lower())
    if name not in TEXT_FIELDS and name not in KEYWORD_FIELDS:
        known = sorted(set(TEXT_FIELDS) | set(KEYWORD_FIELDS) | set(QUERY_FIELD_ALIASES))
        raise QueryError(f"unknown field {name!r}; fields are {', '.join(known)}")
    return name


def _convert(node: tree.Item, field: str | None) -> Node:  # noqa: PLR0911
    if isinstance(node, tree.SearchField):
        return _convert(node.expr, _field(node.name))
    if isinstance(node, tree.Group | tree.FieldGroup):
        return _convert(node.expr, field)
    if isinstance(node, tree.AndOperation | tree.UnknownOperation):
        must, must_not = [], []
        for child in node.children:
            if isinstance(child, tree.Not | tree.Prohibit):
                must_not.append(_convert(child.a, field))
            else:
                must.append(_convert(child.a if isinstance(child, tree.Plus) else child, field))
        return Bool(must=tuple(must) or (MatchAll(),), must_not=tuple(must_not))
    if isinstance(node, tree.OrOperation):
        return Bool(should=tuple(_convert(child, field) for child in node.children))
    if isinstance(node, tree.Not | tree.Prohibit):
        return Bool(must=(MatchAll(),), must_not=(_convert(node.a, field),))
    if isinstance(node, tree.Plus):
        return _convert(node.a, field)
    if isinstance(node, tree.Fuzzy):
        word = str(node.term.value)
        degree = int(node.degree) if node.degree is not None and node.degree >= 1 else fuzzy_distance(word)
        return _term(field, word, "fuzzy", min(degree, 2))
    if isinstance(node, tree.Phrase):
        return _term(field, str(node.value).strip('"'), "phrase")
    if isinstance(node, tree.Word):
        value = str(node.value)
        if value == "*" and field is None:
            return MatchAll()  # `* -pneumonia`: everything but
        if value.endswith("*") and not re.search(r"[*?]", value[:-1]) and len(value) > 1:
            return _term(field, value[:-1], "prefix")
        if re.search(r"[*?]", value):
            raise QueryError(f"{value!r}: only a trailing * is supported as a wildcard")
        return _term(field, value, "word")
    if isinstance(node, tree.Proximity):
        return _term(field, str(node.term.value).strip('"'), "phrase")
    raise QueryError(f"{node} is not supported in a query")


def _term(field: str | None, text: str, kind: str, distance: int = 0) -> Term:
    text = text.replace("\\", "")
    if field in KEYWORD_FIELDS:
        return Term(field, normalise_keyword(field, text), "prefix" if kind == "prefix" else "word")
    return Term(field, text.lower() if kind in ("prefix", "fuzzy") else text, kind, distance)
