"""The scale-out search backend: an OpenSearch cluster through opensearch-py.

Casebank owns its index template and mappings. Searches and writes go through the alias
``<prefix>-cases``; ``rebuild`` bulk-loads a new index and swaps the alias in one request, so
``casebank reindex`` has no downtime. Text fields use an analyser made to match tantivy's
``en_stem`` (lower case, Snowball English stemming; standard tokenizer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from .index import (
    KEYWORD_FIELDS,
    TEXT_FIELDS,
    CaseDocument,
    Progress,
    SearchHit,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
)
from .query import Bool, MatchAll, Node, Term, is_everything, parse
from .results import SNIPPET_FIELDS, Range, facet_field, facet_values, grouped_filters

ANALYSIS = {
    "filter": {"casebank_english_stem": {"type": "snowball", "language": "English"}},
    "analyzer": {"casebank_english": {"type": "custom", "tokenizer": "standard",
                                      "filter": ["lowercase", "casebank_english_stem"]}},
}
# opensearch-py logs every failed request as a warning with its whole traceback; Casebank reports
# the failure itself (SearchUnavailable: a 503, a CLI message, one log line from the indexer).
logging.getLogger("opensearch").setLevel(logging.ERROR)

MAX_FACET_VALUES = 10_000
BULK_CHUNK = 1_000


def mappings() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "case_id": {"type": "long"}, "folder_id": {"type": "long"},
        "created": {"type": "long"}, "likes": {"type": "long"}, "author": {"type": "keyword", "index": True},
        "custom_numbers": {"type": "nested", "properties": {"name": {"type": "keyword"}, "value": {"type": "double"}}},
    }
    properties.update({name: {"type": "text", "analyzer": "casebank_english"} for name in TEXT_FIELDS})
    properties.update({name: {"type": "keyword"} for name in KEYWORD_FIELDS})
    return {"dynamic": "strict", "properties": properties}


class OpenSearchIndex:
    def __init__(self, url: str, *, prefix: str = "casebank", shards: int = 1, replicas: int = 0,
                 client: OpenSearch | None = None) -> None:
        hosts = [host.strip() for host in url.split(",") if host.strip()]  # several nodes, comma separated
        self.client = client or OpenSearch(hosts=hosts, timeout=30, max_retries=2, retry_on_timeout=True)
        self.prefix = prefix
        self.alias = f"{prefix}-cases"
        self.shards, self.replicas = shards, replicas
        self._ready = False

    # --- Index management ------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {"number_of_shards": self.shards, "number_of_replicas": self.replicas, "analysis": ANALYSIS}

    def ensure(self) -> None:
        """The template and, if none yet, a first index behind the alias."""
        if self._ready:
            return
        try:
            self.client.indices.put_index_template(name=f"{self.prefix}-cases", body={
                "index_patterns": [f"{self.prefix}-cases-*"],
                "template": {"settings": self._settings(), "mappings": mappings()},
            })
            if not self.client.indices.exists_alias(name=self.alias):
                name = self._new_index()
                self.client.indices.put_alias(index=name, name=self.alias)
        except (OpenSearchConnectionError, TransportError) as exc:
            raise SearchUnavailable(f"OpenSearch is not reachable: {exc}") from exc
        self._ready = True

    def _new_index(self) -> str:
        name = f"{self.alias}-{time.time_ns()}"
        self.client.indices.create(index=name, body={"settings": self._settings(), "mappings": mappings()})
        return name

    # --- Writing ---------------------------------------------------------------------------------

    def upsert(self, documents: Iterable[CaseDocument]) -> None:
        docs = list(documents)
        if not docs:
            return
        self.ensure()
        self._bulk(self.alias, docs, refresh=True)

    def delete(self, case_ids: Iterable[int]) -> None:
        ids = list(case_ids)
        if not ids:
            return
        self.ensure()
        actions = ({"_op_type": "delete", "_index": self.alias, "_id": str(i)} for i in ids)
        try:
            helpers.bulk(self.client, actions, raise_on_error=False, refresh=True)
        except (OpenSearchConnectionError, TransportError) as exc:
            raise SearchUnavailable(f"OpenSearch is not reachable: {exc}") from exc

    def rebuild(self, documents: Iterable[CaseDocument], progress: Progress | None = None) -> int:
        """Bulk-load a new index, then move the alias to it in one atomic request."""
        self.ensure()
        try:
            name = self._new_index()
            count = self._bulk(name, documents, refresh=False, progress=progress)
            self.client.indices.refresh(index=name)
            old = list(self.client.indices.get_alias(name=self.alias))
            actions = [{"remove": {"index": index, "alias": self.alias}} for index in old]
            self.client.indices.update_aliases(body={"actions": [*actions, {"add": {"index": name, "alias": self.alias}}]})
            for index in old:
                self.client.indices.delete(index=index, ignore_unavailable=True)
        except (OpenSearchConnectionError, TransportError) as exc:
            raise SearchUnavailable(f"OpenSearch failed during the rebuild: {exc}") from exc
        return count

    def _bulk(self, index: str, documents: Iterable[CaseDocument], *, refresh: bool,
              progress: Progress | None = None) -> int:
        def actions() -> Iterator[dict[str, Any]]:
            for doc in documents:
                yield {"_op_type": "index", "_index": index, "_id": str(doc.case_id), "_source": _source(doc)}

        count = 0
        try:
            for _result in helpers.streaming_bulk(self.client, actions(), chunk_size=BULK_CHUNK, raise_on_error=True):
                count += 1
                if progress is not None:
                    progress(1)
            if refresh:
                self.client.indices.refresh(index=index)
        except (OpenSearchConnectionError, TransportError) as exc:
            raise SearchUnavailable(f"OpenSearch is not reachable: {exc}") from exc
        return count

    # --- Searching -------------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResult:
        if not query.folder_ids:
            return SearchResult(total=0)
        self.ensure()
        text_query = _translate(parse(query.text))
        filters: list[dict[str, Any]] = [{"terms": {"folder_id": sorted(query.folder_ids)}}]
        filters += [_any([_range(v) if isinstance(v, Range) else {"term": {field: v}} for v in values])
                    for field, values in grouped_filters(query.filters)]
        body: dict[str, Any] = {
            "query": {"bool": {"must": [text_query], "filter": filters}},
            "from": query.offset, "size": query.limit, "track_total_hits": True,
            "_source": ["case_id", "folder_id", "title"],
        }
        if query.sort == "date":
            body["sort"] = [{"created": "desc"}]
        elif query.sort == "likes":
            body["sort"] = [{"likes": "desc"}]
        if not is_everything(query.text):
            body["highlight"] = {"fields": {name: {"number_of_fragments": 1, "fragment_size": 150}
                                            for name in SNIPPET_FIELDS},
                                 "pre_tags": ["<mark>"], "post_tags": ["</mark>"], "encoder": "html"}
        fields = sorted({facet_field(name) for name in query.facets})
        if fields:
            body["aggs"] = {field: {"terms": {"field": field, "size": MAX_FACET_VALUES, "shard_size": MAX_FACET_VALUES}}
                            for field in fields}
        try:
            answer = self.client.search(index=self.alias, body=body)
        except NotFoundError:
            self._ready = False
            return SearchResult(total=0)
        except (OpenSearchConnectionError, TransportError) as exc:
            raise SearchUnavailable(f"OpenSearch is not reachable: {exc}") from exc
        hits = [
            SearchHit(case_id=int(h["_source"]["case_id"]), title=h["_source"].get("title", ""),
                      folder_id=int(h["_source"]["folder_id"]),
                      score=float(h.get("_score") or 0.0) if query.sort == "relevance" else 0.0,
                      snippet=_snippet(h.get("highlight", {})))
            for h in answer["hits"]["hits"]
        ]
        aggregations = answer.get("aggregations", {})
        buckets = {field: {str(b["key"]): int(b["doc_count"]) for b in aggregations.get(field, {}).get("buckets", [])}
                   for field in fields}
        facets = {name: facet_values(name, buckets[facet_field(name)], query.facet_size) for name in query.facets}
        return SearchResult(total=int(answer["hits"]["total"]["value"]), hits=hits, facets=facets)

    def close(self) -> None:
        self.client.close()


def _source(doc: CaseDocument) -> dict[str, Any]:
    source: dict[str, Any] = {
        "case_id": doc.case_id, "folder_id": doc.folder_id, "author": doc.author,
        "created": int(doc.created.timestamp()) if doc.created else 0, "likes": doc.likes,
    }
    source.update(doc.text_values())
    source.update(doc.keyword_values())
    source["custom_numbers"] = [{"name": name, "value": float(value)} for name, value in doc.custom_numbers.items()]
    return source


def _range(bounds: Range) -> dict[str, Any]:
    limits = {key: value for key, value in (("gte", bounds.low), ("lte", bounds.high)) if value is not None}
    return {"nested": {"path": "custom_numbers", "query": {"bool": {"filter": [
        {"term": {"custom_numbers.name": bounds.name}}, {"range": {"custom_numbers.value": limits}}]}}}}


def _snippet(highlight: dict[str, list[str]]) -> str:
    for name in SNIPPET_FIELDS:
        if highlight.get(name):
            return highlight[name][0].strip()
    return ""


def _translate(node: Node) -> dict[str, Any]:
    if isinstance(node, MatchAll):
        return {"match_all": {}}
    if isinstance(node, Bool):
        clauses: dict[str, Any] = {}
        if node.must:
            clauses["must"] = [_translate(n) for n in node.must]
        if node.must_not:
            clauses["must_not"] = [_translate(n) for n in node.must_not]
            clauses.setdefault("must", [{"match_all": {}}])
        if node.should:
            clauses.setdefault("must", []).append(
                {"bool": {"should": [_translate(n) for n in node.should], "minimum_should_match": 1}}
            )
        return {"bool": clauses}
    return _term(node)


def _term(term: Term) -> dict[str, Any]:
    if term.is_keyword:
        if term.kind == "prefix":
            return {"prefix": {term.field: term.text}}
        return {"term": {term.field: term.text}}
    fields = [term.field] if term.field else list(TEXT_FIELDS)
    if term.kind == "prefix":
        return _any([{"prefix": {f: term.text}} for f in fields])
    if term.kind == "fuzzy":
        return _any([{"fuzzy": {f: {"value": term.text, "fuzziness": term.distance, "transpositions": True,
                                    "prefix_length": 0}}} for f in fields])
    return _any([{"match_phrase": {f: term.text}} for f in fields])


def _any(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}
