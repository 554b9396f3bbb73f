"""The values that cross the terminology package's boundary, and what a loader hands the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Progress = Callable[[int, "int | None"], None]
"""``progress(done, total)``; ``total`` is None while it is not yet known (reading a file)."""


class TerminologyError(Exception):
    """An unknown code system, or a release file that cannot be read (the message names the file and why)."""


@dataclass(frozen=True)
class Concept:
    """One code of one system: what a user sees when picking or reading a code."""

    system: str
    code: str
    display: str
    synonyms: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()


@dataclass
class Release:
    """A code system as a loader read it: active concepts, their synonyms and direct parents.

    The store computes the transitive closure; parents that are not concepts of the release are
    dropped there.
    """

    system: str
    version: str
    displays: dict[str, str] = field(default_factory=dict)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)

    def add(self, code: str, display: str, synonyms: list[str] | None = None, parents: list[str] | None = None) -> None:
        self.displays[code] = display
        if synonyms:
            self.synonyms.setdefault(code, []).extend(synonyms)
        if parents:
            self.parents.setdefault(code, []).extend(parents)
