"""The interface every search backend implements, and the values that cross it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class CaseDocument:
    """What the index holds of one case; built by `search.document.document_for`."""

    case_id: int
    folder_id: int
    title: str
    history: str = ""
    findings: str = ""
    diagnosis: str = ""
    differential: str = ""
    discussion: str = ""
    keywords: Sequence[str] = ()
    codes: Sequence[str] = ()  # "SYSTEM|CODE display" per coded entry
    modalities: Sequence[str] = ()
    body_parts: Sequence[str] = ()
    study_descriptions: Sequence[str] = ()


@dataclass(frozen=True)
class SearchHit:
    case_id: int
    title: str
    folder_id: int
    score: float


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[SearchHit] = field(default_factory=list)


class SearchIndex(Protocol):
    def upsert(self, documents: Iterable[CaseDocument]) -> None: ...

    def delete(self, case_ids: Iterable[int]) -> None: ...

    def search(
        self, text: str, folder_ids: Iterable[int], *, limit: int = 20, offset: int = 0
    ) -> SearchResult:
        """Cases matching `text`, restricted to `folder_ids` (the folders the asker may view)."""
        ...

    def close(self) -> None: ...
