"""The interface every search backend implements, and the values that cross it.

Both backends (tantivy embedded, OpenSearch at scale) take the same :class:`SearchQuery` and
must return the same hits and facet counts for the same documents; one contract test suite
checks that (``tests/search/test_contract.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

TEXT_FIELDS = (
    "title", "history", "findings", "diagnosis", "differential", "discussion", "keywords_text", "codes_text",
    "study_description",
)
"""Analysed English text (stemming); searched when a query names no field."""

KEYWORD_FIELDS = (
    "modality", "body_part", "procedure_code", "sex", "age_band", "year", "folder", "keyword", "code",
    "icd10", "icd10_chapter", "icd10_block", "snomed", "acr", "custom",
)
"""Exact values: filters and facets. ``code`` holds ``SYSTEM|CODE`` of every coded entry and of
every ancestor, so a filter on a parent finds its descendants; ``custom`` holds ``name=value``."""

QUERY_FIELD_ALIASES = {
    "keywords": "keywords_text", "codes": "codes_text", "description": "study_description", "tag": "keyword",
    "bodypart": "body_part",
}
"""Friendlier names accepted in query text (``keywords:liver``)."""

SORTS = ("relevance", "date", "likes")


@dataclass(frozen=True)
class CaseDocument:
    """What the index holds of one case; built by :func:`search.document.document_for`."""

    case_id: int
    folder_id: int
    title: str
    history: str = ""
    findings: str = ""
    diagnosis: str = ""
    differential: str = ""
    discussion: str = ""
    keywords: Sequence[str] = ()
    codes: Sequence[str] = ()  # "SYSTEM|CODE" of each coded entry and each ancestor
    code_texts: Sequence[str] = ()  # displays and synonyms of coded entries
    icd10: Sequence[str] = ()
    icd10_chapters: Sequence[str] = ()
    icd10_blocks: Sequence[str] = ()
    snomed: Sequence[str] = ()
    acr: Sequence[str] = ()
    modalities: Sequence[str] = ()
    body_parts: Sequence[str] = ()
    procedure_codes: Sequence[str] = ()
    study_descriptions: Sequence[str] = ()
    sex: str = ""
    age_band: str = ""
    custom: Sequence[str] = ()  # "name=value" of each custom catalogue field
    custom_numbers: Mapping[str, float] = field(default_factory=dict)  # number fields; dates as YYYYMMDD
    author: str = ""  # for filtering only: never returned in hits
    created: datetime | None = None
    updated: datetime | None = None
    likes: int = 0

    def keyword_values(self) -> dict[str, list[str]]:
        """Every keyword field with its values, as both backends store them."""
        year = str(self.created.year) if self.created else ""
        return {
            "modality": list(self.modalities), "body_part": list(self.body_parts),
            "procedure_code": list(self.procedure_codes), "sex": [self.sex] if self.sex else [],
            "age_band": [self.age_band] if self.age_band else [], "year": [year] if year else [],
            "folder": [str(self.folder_id)], "keyword": sorted({k.strip().lower() for k in self.keywords if k.strip()}),
            "code": list(self.codes), "icd10": list(self.icd10), "icd10_chapter": list(self.icd10_chapters),
            "icd10_block": list(self.icd10_blocks), "snomed": list(self.snomed), "acr": list(self.acr),
            "custom": list(self.custom),
        }

    def text_values(self) -> dict[str, str | list[str]]:
        return {
            "title": self.title, "history": self.history, "findings": self.findings, "diagnosis": self.diagnosis,
            "differential": self.differential, "discussion": self.discussion, "keywords_text": list(self.keywords),
            "codes_text": list(self.code_texts), "study_description": list(self.study_descriptions),
        }


@dataclass(frozen=True)
class SearchQuery:
    """One search. ``folder_ids`` are the folders the asker may view: always enforced.

    ``filters`` are ``(field, value)`` pairs: the same field repeated is OR, different fields AND.
    A facet ``custom.NAME`` counts the values of one custom catalogue field.
    """

    folder_ids: frozenset[int]
    text: str = ""
    filters: tuple[tuple[str, str], ...] = ()
    facets: tuple[str, ...] = ()
    sort: str = "relevance"
    offset: int = 0
    limit: int = 20
    facet_size: int = 20


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


@dataclass(frozen=True)
class SearchHit:
    case_id: int
    title: str
    folder_id: int
    score: float
    snippet: str = ""  # HTML-escaped text with matches in <mark>


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[SearchHit] = field(default_factory=list)
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)


class SearchUnavailable(Exception):
    """The backend cannot be reached; changes wait in the pending queue."""


Progress = Callable[[int], None]


class SearchIndex(Protocol):
    def upsert(self, documents: Iterable[CaseDocument]) -> None: ...

    def delete(self, case_ids: Iterable[int]) -> None: ...

    def search(self, query: SearchQuery) -> SearchResult: ...

    def rebuild(self, documents: Iterable[CaseDocument], progress: Progress | None = None) -> int:
        """Replace the whole index with ``documents``; searches keep working meanwhile."""
        ...

    def close(self) -> None: ...
