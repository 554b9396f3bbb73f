"""The SQLite file that holds every loaded code system: concepts, designations, words, ancestors.

One connection per call, so a :class:`Store` may be shared by threads (and processes: writes
take SQLite's write lock, readers keep reading the previous release until a load commits).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .model import Concept, Progress, Release

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    system TEXT PRIMARY KEY, version TEXT NOT NULL, loaded_at TEXT NOT NULL, concepts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS concepts (
    system TEXT NOT NULL, code TEXT NOT NULL, display TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (system, code)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS designations (
    id INTEGER PRIMARY KEY, system TEXT NOT NULL, code TEXT NOT NULL, term TEXT NOT NULL,
    preferred INTEGER NOT NULL, normal TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS designations_of_concept ON designations (system, code);
CREATE TABLE IF NOT EXISTS words (
    system TEXT NOT NULL, word TEXT NOT NULL, designation INTEGER NOT NULL,
    PRIMARY KEY (system, word, designation)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ancestors (
    system TEXT NOT NULL, code TEXT NOT NULL, ancestor TEXT NOT NULL, depth INTEGER NOT NULL,
    PRIMARY KEY (system, code, ancestor)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ancestors_by_ancestor ON ancestors (system, ancestor);
"""
TABLES = ("releases", "concepts", "designations", "words", "ancestors")
BATCH = 5_000
"""Concepts written between progress reports."""
_END = "\U0010ffff"  # sorts after every character: [prefix, prefix + _END) is a prefix range
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-case words without accents, as terms are indexed and queries are matched."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))


def closure(code: str, parents: dict[str, list[str]]) -> dict[str, int]:
    """Every ancestor of ``code`` with its distance along the shortest is-a path (cycles are cut)."""
    depth_of: dict[str, int] = {}
    frontier, depth = [code], 0
    while frontier:
        depth += 1
        reached = []
        for child in frontier:
            for parent in parents.get(child, ()):
                if parent not in depth_of and parent != code:
                    depth_of[parent] = depth
                    reached.append(parent)
        frontier = reached
    return depth_of


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not self._schema_ready:
            with self._schema_lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with closing(sqlite3.connect(self.path, timeout=60)) as connection:
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.executescript(SCHEMA)
                self._schema_ready = True
        with closing(sqlite3.connect(self.path, timeout=60, isolation_level=None)) as connection:
            if not write:
                yield connection
                return
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def versions(self) -> dict[str, str]:
        """The version of every stored system's release."""
        with self._connect() as db:
            return dict(db.execute("SELECT system, version FROM releases"))

    def replace(self, release: Release, progress: Progress | None = None, *, unless_version: str | None = None) -> int:
        """Store ``release`` in place of the system's earlier one, in one transaction.

        With ``unless_version``, nothing is written if that version is already stored (another
        thread or process got there first). Returns the number of concepts stored.
        """
        system, displays = release.system, release.displays
        parents = {
            code: [p for p in dict.fromkeys(ps) if p in displays and p != code] for code, ps in release.parents.items()
        }
        with self._connect(write=True) as db:
            stored = db.execute("SELECT version FROM releases WHERE system = ?", (system,)).fetchone()
            if unless_version is not None and stored == (unless_version,):
                return len(displays)
            for table in TABLES:
                db.execute(f"DELETE FROM {table} WHERE system = ?", (system,))
            next_id = db.execute("SELECT coalesce(max(id), 0) + 1 FROM designations").fetchone()[0]
            codes = list(displays)
            for start in range(0, len(codes), BATCH):
                next_id = self._write(db, release, parents, codes[start:start + BATCH], next_id)
                if progress is not None:
                    progress(min(start + BATCH, len(codes)), len(codes))
            db.execute(
                "INSERT INTO releases VALUES (?, ?, ?, ?)",
                (system, release.version, datetime.now(timezone.utc).isoformat(timespec="seconds"), len(codes)),
            )
        return len(codes)

    @staticmethod
    def _write(db: sqlite3.Connection, release: Release, parents: dict[str, list[str]], codes: list[str],
               next_id: int) -> int:
        system = release.system
        concept_rows, designation_rows, word_rows, ancestor_rows = [], [], [], []
        for code in codes:
            display = release.displays[code]
            concept_rows.append((system, code, display))
            seen = {display.casefold()}
            terms = [(display, 1)]
            for synonym in release.synonyms.get(code, ()):
                if synonym.casefold() not in seen:
                    seen.add(synonym.casefold())
                    terms.append((synonym, 0))
            for term, preferred in terms:
                term_words = words(term)
                designation_rows.append((next_id, system, code, term, preferred, " ".join(term_words)))
                word_rows.extend((system, word, next_id) for word in set(term_words))
                next_id += 1
            ancestor_rows.extend((system, code, a, d) for a, d in closure(code, parents).items())
        db.executemany("INSERT INTO concepts (system, code, display) VALUES (?, ?, ?)", concept_rows)
        db.executemany("INSERT INTO designations VALUES (?, ?, ?, ?, ?, ?)", designation_rows)
        db.executemany("INSERT INTO words VALUES (?, ?, ?)", word_rows)
        db.executemany("INSERT INTO ancestors VALUES (?, ?, ?, ?)", ancestor_rows)
        return next_id

    def concepts(self, system: str, codes: Sequence[str]) -> list[Concept]:
        """The stored concepts among ``codes``, in that order."""
        if not codes:
            return []
        with self._connect() as db:
            marks = ",".join("?" * len(codes))
            displays = dict(db.execute(
                f"SELECT code, display FROM concepts WHERE system = ? AND active = 1 AND code IN ({marks})",
                (system, *codes),
            ))
            synonyms: dict[str, list[str]] = {}
            for code, term in db.execute(
                f"SELECT code, term FROM designations WHERE system = ? AND preferred = 0 AND code IN ({marks}) ORDER BY id",
                (system, *codes),
            ):
                synonyms.setdefault(code, []).append(term)
            parents: dict[str, list[str]] = {}
            for code, parent in db.execute(
                f"SELECT code, ancestor FROM ancestors WHERE system = ? AND depth = 1 AND code IN ({marks})"
                " ORDER BY ancestor",
                (system, *codes),
            ):
                parents.setdefault(code, []).append(parent)
        return [
            Concept(system, code, displays[code], tuple(synonyms.get(code, ())), tuple(parents.get(code, ())))
            for code in dict.fromkeys(codes) if code in displays
        ]

    def ancestors(self, system: str, code: str) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT ancestor FROM ancestors WHERE system = ? AND code = ? ORDER BY depth, ancestor", (system, code)
            )
            return [ancestor for (ancestor,) in rows]

    def descendants(self, system: str, code: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT code FROM ancestors WHERE system = ? AND ancestor = ?", (system, code))
            return {descendant for (descendant,) in rows}

    def listing(self, system: str, limit: int, within: str | None = None) -> list[str]:
        """Codes in display order: all of the system's, or ``within`` and its descendants."""
        subsumed, args = _within("c", system, within)
        with self._connect() as db:
            rows = db.execute(
                f"SELECT code FROM concepts c WHERE system = ? AND active = 1 {subsumed}"
                " ORDER BY display, code LIMIT ?",
                (system, *args, limit),
            )
            return [code for (code,) in rows]

    def search(self, system: str, text: str, code_prefix: str, limit: int, within: str | None = None) -> list[str]:
        """Codes whose designations have a word starting with each word of ``text``, or whose code
        starts with ``code_prefix``; best first: exact code, exact term, code prefix, term prefix,
        other word matches; then shorter terms, preferred before synonyms."""
        query = words(text)
        if not query:
            return []
        ranked: list[tuple[tuple[int, int, int, str], str]] = []
        with self._connect() as db:
            ranked += self._code_matches(db, system, code_prefix, limit, within)
            ranked += self._term_matches(db, system, query, limit, within)
        best: dict[str, None] = {}
        for _, code in sorted(ranked):
            best.setdefault(code)
        return list(best)[:limit]

    @staticmethod
    def _code_matches(db: sqlite3.Connection, system: str, prefix: str, limit: int, within: str | None,
                      ) -> list[tuple[tuple[int, int, int, str], str]]:
        if not prefix:
            return []
        subsumed, args = _within("c", system, within)
        rows = db.execute(
            f"SELECT code FROM concepts c WHERE system = ? AND active = 1 AND code >= ? AND code < ? {subsumed}"
            " ORDER BY code != ?, length(code), code LIMIT ?",
            (system, prefix, prefix + _END, *args, prefix, limit),
        )
        return [((0 if code == prefix else 2, len(code), 0, code), code) for (code,) in rows]

    @staticmethod
    def _term_matches(db: sqlite3.Connection, system: str, query: list[str], limit: int, within: str | None,
                      ) -> list[tuple[tuple[int, int, int, str], str]]:
        phrase = " ".join(query)
        hits = " INTERSECT ".join(["SELECT designation FROM words WHERE system = ? AND word >= ? AND word < ?"] * len(query))
        subsumed, args = _within("d", system, within)
        rows = db.execute(
            f"SELECT CASE WHEN normal = ? THEN 1 WHEN substr(normal, 1, ?) = ? THEN 3 ELSE 4 END AS rank,"
            f" length(term) AS size, -preferred, code FROM designations d WHERE id IN ({hits}) {subsumed}"
            " ORDER BY rank, size, preferred DESC, code",
            (phrase, len(phrase), phrase, *[v for w in query for v in (system, w, w + _END)], *args),
        )
        found: dict[str, tuple[int, int, int, str]] = {}
        for row in rows:
            found.setdefault(row[3], row)
            if len(found) == limit:
                break
        return [(key, code) for code, key in found.items()]


def _within(alias: str, system: str, code: str | None) -> tuple[str, tuple[str, ...]]:
    """SQL restricting ``alias.code`` to ``code`` and its descendants (nothing if no code)."""
    if code is None:
        return "", ()
    return (
        f"AND ({alias}.code = ? OR EXISTS (SELECT 1 FROM ancestors a"
        f" WHERE a.system = ? AND a.code = {alias}.code AND a.ancestor = ?))",
        (code, system, code),
    )
