"""Scoring a typed quiz answer against a case's diagnosis: its text, its coded entries (with the
terminology's synonyms) and a reviewed list of the names radiologists use for the same thing.

An answer is right when it names one of the accepted terms: every word of the term appears in the
answer (so "hepatocellular carcinoma, probably" counts), an abbreviation matches as a whole word,
or the answer is a close spelling of a term (one slip in ten letters)."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

SYNONYMS_FILE = Path(__file__).resolve().parent.parent / "terminology" / "data" / "radiology_synonyms.csv"
CLOSE_SPELLING = 0.9
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({"of", "the", "a", "an", "with", "and", "in", "left", "right"})


def words(text: str) -> tuple[str, ...]:
    """Lower-case words without accents or punctuation; British and American spellings folded."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    plain = plain.replace("haem", "hem").replace("oedema", "edema").replace("tumour", "tumor").replace("aemia", "emia")
    return tuple(_WORD.findall(plain))


@lru_cache(maxsize=1)
def synonym_groups() -> tuple[tuple[str, ...], ...]:
    with SYNONYMS_FILE.open(encoding="utf-8") as f:
        rows = csv.reader(line for line in f if line.strip() and not line.startswith("#"))
        return tuple(tuple(name.strip() for name in row if name.strip()) for row in rows)


def expand(terms: Iterable[str]) -> list[str]:
    """`terms` and every name grouped with one of them in the synonyms file."""
    accepted: list[str] = []
    keys: set[tuple[str, ...]] = set()

    def add(term: str) -> None:
        key = words(term)
        if key and key not in keys:
            keys.add(key)
            accepted.append(term)

    for term in terms:
        add(term)
    for group in synonym_groups():
        if any(words(name) in keys for name in group):
            for name in group:
                add(name)
    return accepted


@dataclass(frozen=True)
class Score:
    correct: bool
    matched: str  # the accepted term the answer named; "" when wrong


def score(answer: str, accepted: Iterable[str]) -> Score:
    said = words(answer)
    if not said:
        return Score(False, "")
    said_set = set(said)
    for term in accepted:
        wanted = [w for w in words(term) if w not in _STOP] or list(words(term))
        if not wanted:
            continue
        if all(w in said_set for w in wanted):
            return Score(True, term)
        if len(" ".join(wanted)) >= 6 and SequenceMatcher(None, " ".join(said), " ".join(wanted)).ratio() >= CLOSE_SPELLING:
            return Score(True, term)
    return Score(False, "")


def diagnosis_terms(diagnosis: str, codes: Iterable[tuple[str, str, str]], synonyms_of=None) -> list[str]:  # type: ignore[no-untyped-def]
    """The accepted names for a case: each line or ';'-separated part of its diagnosis text, the
    display of each coded entry and its synonyms in the terminology (`synonyms_of(system, code)`),
    then everything the synonyms file groups with them."""
    terms = [part.strip(" .") for part in re.split(r"[\n;]", diagnosis or "") if part.strip(" .")]
    for system, code, display in codes:
        if display:
            terms.append(display)
        if synonyms_of is not None:
            terms.extend(synonyms_of(system, code))
    return expand(terms)
