"""The search backends the contract suite runs on: tantivy always, OpenSearch through
osmem-server (a real OpenSearch API server), and a real cluster when CASEBANK_TEST_OPENSEARCH_URL
is set."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from search.opensearch_backend import OpenSearchIndex
from search.tantivy_backend import TantivyIndex

REAL_CLUSTER = os.environ.get("CASEBANK_TEST_OPENSEARCH_URL", "")
BACKENDS = ["tantivy", "osmem", *(["opensearch"] if REAL_CLUSTER else [])]


def open_backend(kind: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if kind == "tantivy":
        return TantivyIndex(tmp_path / "index")
    url = REAL_CLUSTER if kind == "opensearch" else request.getfixturevalue("osmem_url")
    index = OpenSearchIndex(url, prefix=f"test-{uuid.uuid4().hex[:10]}")
    request.addfinalizer(lambda: _drop(index))
    return index


def _drop(index: OpenSearchIndex) -> None:
    try:
        index.client.indices.delete(index=f"{index.alias}-*", ignore_unavailable=True)
        index.client.indices.delete_index_template(name=index.alias, ignore=[404])
    finally:
        index.close()
