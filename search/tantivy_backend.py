"""The embedded search backend: a tantivy index on disk under the data folder."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import tantivy

from .index import CaseDocument, SearchHit, SearchResult

TEXT_FIELDS = (
    "title", "history", "findings", "diagnosis", "differential", "discussion",
    "keywords", "codes", "study_description",
)
KEYWORD_FIELDS = ("modality", "body_part")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("case_id", stored=True, indexed=True, fast=True)
    builder.add_integer_field("folder_id", stored=True, indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, stored=name == "title", tokenizer_name="en_stem")
    for name in KEYWORD_FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name="raw", fast=True)
    return builder.build()


class TantivyIndex:
    """Thread-safe within one process; one writer at a time, opened per batch."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.schema = _schema()
        self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        self._write_lock = threading.Lock()

    def upsert(self, documents: Iterable[CaseDocument]) -> None:
        docs = list(documents)
        if not docs:
            return
        with self._write_lock:
            writer = self.index.writer(heap_size=50_000_000, num_threads=1)
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

    def search(
        self, text: str, folder_ids: Iterable[int], *, limit: int = 20, offset: int = 0
    ) -> SearchResult:
        allowed = sorted(set(folder_ids))
        if not allowed:
            return SearchResult(total=0)
        permitted = tantivy.Query.term_set_query(self.schema, "folder_id", allowed)
        text = text.strip()
        if text:
            parsed, _errors = self.index.parse_query_lenient(text, list(TEXT_FIELDS))
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, parsed), (tantivy.Occur.Must, permitted)]
            )
        else:
            query = permitted
        searcher = self.index.searcher()
        result = searcher.search(query, limit=limit, offset=offset, count=True)
        hits = []
        for score, address in result.hits:
            stored = searcher.doc(address)
            hits.append(
                SearchHit(
                    case_id=stored["case_id"][0],
                    title=stored["title"][0] if stored["title"] else "",
                    folder_id=stored["folder_id"][0],
                    score=score,
                )
            )
        return SearchResult(total=result.count or 0, hits=hits)

    def close(self) -> None:
        pass


def _to_tantivy(doc: CaseDocument) -> tantivy.Document:
    return tantivy.Document(
        case_id=doc.case_id,
        folder_id=doc.folder_id,
        title=doc.title,
        history=doc.history,
        findings=doc.findings,
        diagnosis=doc.diagnosis,
        differential=doc.differential,
        discussion=doc.discussion,
        keywords=list(doc.keywords),
        codes=list(doc.codes),
        study_description=list(doc.study_descriptions),
        modality=list(doc.modalities),
        body_part=list(doc.body_parts),
    )
