"""The embedded search backend: a tantivy index on disk under the data folder.

Text fields use tantivy's ``en_stem`` analyser (simple tokenizer, lower case, Snowball English);
keyword fields are raw fast fields, counted with tantivy's terms aggregation.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tantivy

from .index import (
    KEYWORD_FIELDS,
    TEXT_FIELDS,
    CaseDocument,
    Progress,
    SearchHit,
    SearchQuery,
    SearchResult,
)
from .query import Bool, MatchAll, Node, QueryError, Term, is_everything, parse
from .results import (
    CUSTOM_NAME,
    SNIPPET_FIELDS,
    Range,
    facet_field,
    facet_values,
    grouped_filters,
)

SCHEMA_VERSION = 3
"""Bumped when the schema changes: an index of another version is rebuilt (``casebank reindex``)."""
HEAP = 100_000_000
MAX_FACET_VALUES = 10_000
"""Terms the aggregation may return per facet (and per segment): high enough to be exact."""


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("case_id", stored=True, indexed=True, fast=True)
    builder.add_integer_field("folder_id", stored=True, indexed=True, fast=True)
    builder.add_integer_field("created", stored=False, indexed=True, fast=True)
    builder.add_integer_field("likes", stored=False, indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, stored=True, tokenizer_name="en_stem")
    for name in KEYWORD_FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name="raw", fast=True)
    builder.add_json_field("custom_numbers", stored=False, fast=True)  # range filters on custom fields
    return builder.build()


class TantivyIndex:
    """Thread-safe within one process; one writer at a time, opened per batch."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.schema = _schema()
        version_file = path / "casebank-schema.json"
        current = json.loads(version_file.read_text()).get("version") if version_file.is_file() else None
        self.was_reset = current != SCHEMA_VERSION and any(path.iterdir())
        if current != SCHEMA_VERSION:  # another schema (or none): start empty; the runtime reindexes
            for old in path.iterdir():
                if old.is_file():
                    old.unlink()
        self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        version_file.write_text(json.dumps({"version": SCHEMA_VERSION}))
        self._write_lock = threading.Lock()

    # --- Writing ---------------------------------------------------------------------------------

    def upsert(self, documents: Iterable[CaseDocument]) -> None:
        docs = list(documents)
        if not docs:
            return
        with self._write_lock:
            writer = self.index.writer(heap_size=HEAP, num_threads=1)
            for doc in docs:
                writer.delete_documents_by_term("case_id", doc.case_id)
                writer.add_document(_to_tantivy(doc))
            writer.commit()
            writer.wait_merging_threads()
        self.index.reload()

    def delete(self, case_ids: Iterable[int]) -> None:
        ids = list(case_ids)
        if not ids:
            return
        with self._write_lock:
            writer = self.index.writer(heap_size=15_000_000, num_threads=1)
            for case_id in ids:
                writer.delete_documents_by_term("case_id", case_id)
            writer.commit()
            writer.wait_merging_threads()
        self.index.reload()

    def rebuild(self, documents: Iterable[CaseDocument], progress: Progress | None = None) -> int:
        """One commit replaces everything: searchers see the old index until it lands."""
        count = 0
        with self._write_lock:
            writer = self.index.writer(heap_size=HEAP, num_threads=1)
            writer.delete_all_documents()
            for doc in documents:
                writer.add_document(_to_tantivy(doc))
                count += 1
                if progress is not None:
                    progress(1)
            writer.commit()
            writer.wait_merging_threads()
        self.index.reload()
        return count

    # --- Searching -------------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResult:
        allowed = sorted(query.folder_ids)
        if not allowed:
            return SearchResult(total=0)
        text_query = self._translate(parse(query.text))
        clauses = [(tantivy.Occur.Must, tantivy.Query.term_set_query(self.schema, "folder_id", allowed)),
                   (tantivy.Occur.Must, text_query)]
        for field, values in grouped_filters(query.filters):
            any_of = [(tantivy.Occur.Should, self._range(value) if isinstance(value, Range) else self._keyword(field, value))
                      for value in values]
            clauses.append((tantivy.Occur.Must, tantivy.Query.boolean_query(any_of)))
        final = tantivy.Query.boolean_query(clauses)
        searcher = self.index.searcher()
        if query.sort == "relevance":
            result = searcher.search(final, limit=query.limit, offset=query.offset, count=True)
        else:
            field = "created" if query.sort == "date" else "likes"
            result = searcher.search(final, limit=query.limit, offset=query.offset, count=True,
                                     order_by_field=field, order=tantivy.Order.Desc)
        generators = {
            name: tantivy.SnippetGenerator.create(searcher, text_query, self.schema, name) for name in SNIPPET_FIELDS
        } if not is_everything(query.text) else {}
        hits = []
        for score, address in result.hits:
            stored = searcher.doc(address)
            hits.append(SearchHit(
                case_id=stored["case_id"][0], title=(stored["title"] or [""])[0], folder_id=stored["folder_id"][0],
                score=float(score) if query.sort == "relevance" else 0.0, snippet=_snippet(generators, stored),
            ))
        return SearchResult(total=result.count or 0, hits=hits, facets=self._facets(searcher, final, query))

    def _facets(self, searcher: tantivy.Searcher, final: tantivy.Query, query: SearchQuery) -> dict[str, list]:
        if not query.facets:
            return {}
        fields = {facet_field(name) for name in query.facets}
        aggregations = {
            field: {"terms": {"field": field, "size": MAX_FACET_VALUES, "segment_size": MAX_FACET_VALUES}}
            for field in fields
        }
        answer = searcher.aggregate(final, aggregations)
        buckets = {field: {str(b["key"]): int(b["doc_count"]) for b in answer.get(field, {}).get("buckets", [])}
                   for field in fields}
        return {name: facet_values(name, buckets[facet_field(name)], query.facet_size) for name in query.facets}

    def _translate(self, node: Node) -> tantivy.Query:
        if isinstance(node, MatchAll):
            return tantivy.Query.all_query()
        if isinstance(node, Bool):
            clauses = [(tantivy.Occur.Must, self._translate(n)) for n in node.must]
            clauses += [(tantivy.Occur.MustNot, self._translate(n)) for n in node.must_not]
            if node.should:
                any_of = [(tantivy.Occur.Should, self._translate(n)) for n in node.should]
                clauses.append((tantivy.Occur.Must, tantivy.Query.boolean_query(any_of)))
            if all(occur == tantivy.Occur.MustNot for occur, _ in clauses):
                clauses.append((tantivy.Occur.Must, tantivy.Query.all_query()))
            return tantivy.Query.boolean_query(clauses)
        return self._term(node)

    def _term(self, term: Term) -> tantivy.Query:
        if term.is_keyword:
            assert term.field is not None
            if term.kind == "prefix":
                return tantivy.Query.regex_query(self.schema, term.field, _regex_escape(term.text) + ".*")
            return self._keyword(term.field, term.text)
        fields = [term.field] if term.field else list(TEXT_FIELDS)
        if term.kind == "prefix":
            pattern = _regex_escape(term.text) + ".*"
            return _any([tantivy.Query.regex_query(self.schema, f, pattern) for f in fields])
        if term.kind == "fuzzy":
            return _any([tantivy.Query.fuzzy_term_query(self.schema, f, term.text, distance=term.distance,
                                                        transposition_cost_one=True, prefix=False) for f in fields])
        quoted = '"' + term.text.replace('"', " ").replace("\\", " ") + '"'
        try:
            return self.index.parse_query(quoted, fields)
        except ValueError:  # nothing searchable in it (punctuation only)
            return tantivy.Query.empty_query()

    def _keyword(self, field: str, value: str) -> tantivy.Query:
        return tantivy.Query.term_query(self.schema, field, value)

    def _range(self, bounds: Range) -> tantivy.Query:
        if not CUSTOM_NAME.match(bounds.name):
            raise QueryError(f"custom field {bounds.name!r}: range filters need a name of letters, digits and _")
        low = "*" if bounds.low is None else format(bounds.low, "f")
        high = "*" if bounds.high is None else format(bounds.high, "f")
        return self.index.parse_query(f"custom_numbers.{bounds.name}:[{low} TO {high}]")

    def close(self) -> None:
        pass


def _any(queries: list[tantivy.Query]) -> tantivy.Query:
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])


def _regex_escape(text: str) -> str:
    """Escape for tantivy's regex syntax (Rust regex)."""
    return "".join("\\" + c if c in r".+*?()|[]{}^$#&-~\\" else c for c in text)


def _snippet(generators: dict[str, Any], stored: tantivy.Document) -> str:
    for name, generator in generators.items():
        values = stored[name]
        if not values:
            continue
        snippet = generator.snippet_from_doc(stored)
        if snippet.highlighted():
            return _marked(snippet)
    return ""


def _marked(snippet: tantivy.Snippet) -> str:
    """tantivy's fragment with its highlighted ranges in <mark>, the rest escaped."""
    text, parts, at = snippet.fragment(), [], 0
    for span in snippet.highlighted():
        parts += [html.escape(text[at:span.start]), "<mark>", html.escape(text[span.start:span.end]), "</mark>"]
        at = span.end
    parts.append(html.escape(text[at:]))
    return "".join(parts).strip()


def _to_tantivy(doc: CaseDocument) -> tantivy.Document:
    fields: dict[str, Any] = {
        "case_id": doc.case_id, "folder_id": doc.folder_id,
        "created": int(doc.created.timestamp()) if doc.created else 0, "likes": doc.likes,
    }
    fields.update(doc.text_values())
    fields.update({name: values for name, values in doc.keyword_values().items() if values})
    if doc.custom_numbers:
        fields["custom_numbers"] = {name: float(value) for name, value in doc.custom_numbers.items()}
    return tantivy.Document(**fields)
