"""`make bench-quality`: retrieval quality of every search mode on Cranfield and CISI.

Starts the whole mesh on free ports (embedded stores, CPU MiniLM), creates the
first admin, indexes `../shared/datasets/{cranfield,cisi}` through the public
API (one collection each, one .txt file per non-empty document), then runs
every judged query in each mode (dense, sparse, hybrid RRF, hybrid DBSF),
fetching the top 100 chunks and reducing them to documents by their best rank.
Scores nDCG@10, Recall@100 and MRR@10 (bench/metrics.py, trec_eval's
definitions) and, in the same run, an independent BM25 reference with bm25s
over the same documents. Prints a table and writes bench/results/quality.json.

`python -m bench.quality --reference-only` runs only the bm25s reference (no
mesh, a few seconds) and prints its table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s  # type: ignore[import-untyped,unused-ignore]
import grpc
import Stemmer

from bench.datasets import documents, load
from bench.metrics import Scores, best_rank_documents, evaluate
from semantik.v1 import (
    collection_pb2,
    collection_pb2_grpc,
    document_pb2,
    document_pb2_grpc,
    operation_pb2,
    operation_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from semantik_cli.channels import public_channel
from semantik_runner.mesh import Mesh, MeshPorts
from textkit.analyzer import terms

RESULTS = Path(__file__).resolve().parent / "results" / "quality.json"
DATASET_NAMES = ("cranfield", "cisi")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CHUNK_TOKENS = 254  # MiniLM's 256 less [CLS] and [SEP]: most abstracts are one chunk
OVERLAP_TOKENS = 32
DEPTH = 100  # documents per query: Recall@100
PAGE_SIZE = 100  # SearchRequest.top_k's maximum
MAX_PAGES = 5  # chunk hits read per query at most: MAX_PAGES * PAGE_SIZE
K1 = 0.9
B = 0.4
MAX_QUERY_CHARS = 4096
INDEX_TIMEOUT_S = 3600.0
WARMUP_QUERIES = 5

_DEFAULT = search_pb2.QUERY_EXPANSION_UNSPECIFIED  # RM3 for hybrid DBSF, none otherwise
MODES: dict[str, tuple[search_pb2.SearchMode, search_pb2.Fusion, search_pb2.QueryExpansion]] = {
    "dense": (search_pb2.SEARCH_MODE_DENSE, search_pb2.FUSION_UNSPECIFIED, _DEFAULT),
    "sparse": (search_pb2.SEARCH_MODE_SPARSE, search_pb2.FUSION_UNSPECIFIED, _DEFAULT),
    "hybrid_rrf": (search_pb2.SEARCH_MODE_HYBRID, search_pb2.FUSION_RRF, _DEFAULT),
    # The default search (hybrid, DBSF, RM3), and the same without RM3.
    "hybrid_dbsf": (search_pb2.SEARCH_MODE_HYBRID, search_pb2.FUSION_DBSF, _DEFAULT),
    "hybrid_dbsf_no_rm3": (
        search_pb2.SEARCH_MODE_HYBRID,
        search_pb2.FUSION_DBSF,
        search_pb2.QUERY_EXPANSION_NONE,
    ),
}
METRICS = ("ndcg@10", "recall@100", "mrr@10")

Runs = dict[str, list[str]]


@dataclass(frozen=True)
class Dataset:
    name: str
    documents: dict[str, tuple[str, str]]  # non-empty documents: id -> (title, text)
    empty: list[str]  # ids of the empty documents, not indexed
    queries: dict[str, str]  # judged queries only
    qrels: dict[str, dict[str, int]]

    def bm25_text(self, doc_id: str) -> str:
        title, text = self.documents[doc_id]
        return f"{title} {text}".strip()

    def file_text(self, doc_id: str) -> str:
        title, text = self.documents[doc_id]
        return "\n\n".join(part for part in (title.strip(), text.strip()) if part)


def load_dataset(name: str) -> Dataset:
    judged = load(name)
    rows = {
        doc_id: (title.replace("\r", ""), text.replace("\r", ""))
        for doc_id, (title, text) in documents(name).items()
    }
    kept = {doc_id: row for doc_id, row in rows.items() if (row[0] + row[1]).strip()}
    return Dataset(
        name=name,
        documents=kept,
        empty=[doc_id for doc_id in rows if doc_id not in kept],
        queries={qid: text.replace("\r", "").strip() for qid, text in judged.queries.items()},
        qrels=judged.qrels,
    )


# --- the analyser's terms -------------------------------------------------


def analyzer_terms() -> tuple[Callable[[str], list[str]], str]:
    """Our analyser's terms (the index's own, `textkit.analyzer.terms`) and its label."""
    return terms, "textkit.analyzer"


# --- the bm25s reference ---------------------------------------------------


def bm25_runs(
    doc_ids: Sequence[str],
    doc_tokens: list[list[str]],
    queries: dict[str, list[str]],
    depth: int = DEPTH,
) -> Runs:
    """bm25s "lucene" (k1, b as above) top `depth` per query; zero scores dropped."""
    retriever = bm25s.BM25(method="lucene", k1=K1, b=B)
    retriever.index(doc_tokens, show_progress=False)
    runs: Runs = {qid: [] for qid in queries}
    asked = [qid for qid, tokens in queries.items() if tokens]
    if not asked:
        return runs
    found, scores = retriever.retrieve(
        [queries[qid] for qid in asked],
        k=min(depth, len(doc_ids)),
        show_progress=False,
        n_threads=1,
    )
    for row, qid in enumerate(asked):
        runs[qid] = [
            doc_ids[int(index)]
            for index, score in zip(found[row], scores[row], strict=True)
            if score > 0
        ]
    return runs


def reference(data: Dataset, terms: Callable[[str], list[str]]) -> dict[str, Scores]:
    doc_ids = list(data.documents)
    texts = [data.bm25_text(doc_id) for doc_id in doc_ids]
    query_ids = list(data.queries)
    query_texts = [data.queries[qid] for qid in query_ids]
    rows: dict[str, Scores] = {}

    analysed = bm25_runs(
        doc_ids,
        [terms(text) for text in texts],
        {qid: terms(data.queries[qid]) for qid in query_ids},
    )
    rows["bm25_analyzer"] = evaluate(analysed, data.qrels)

    for label, options in (
        ("bm25s_plain", {"stopwords": None}),
        ("bm25s_snowball", {"stopwords": "en", "stemmer": Stemmer.Stemmer("english")}),
    ):
        tokenized: list[list[str]] = bm25s.tokenize(
            texts, return_ids=False, show_progress=False, **options
        )
        query_tokens: list[list[str]] = bm25s.tokenize(
            query_texts, return_ids=False, show_progress=False, **options
        )
        runs = bm25_runs(doc_ids, tokenized, dict(zip(query_ids, query_tokens, strict=True)))
        rows[label] = evaluate(runs, data.qrels)
    return rows


REFERENCE_LABELS = {
    "bm25_analyzer": "bm25s, our analyser's terms",
    "bm25s_plain": "bm25s, plain tokenizer",
    "bm25s_snowball": "bm25s, Snowball + stop words",
}


# --- the mesh ----------------------------------------------------------------


def _create_collection(collections: Any, collection_id: str) -> int:
    """Creates the collection with CHUNK_TOKENS, or the gateway's maximum if lower."""
    chunk_tokens = CHUNK_TOKENS
    for _ in range(2):
        try:
            collections.CreateCollection(
                collection_pb2.CreateCollectionRequest(
                    collection_id=collection_id,
                    collection=collection_pb2.Collection(
                        chunking=collection_pb2.ChunkingConfig(
                            chunk_tokens=chunk_tokens, overlap_tokens=OVERLAP_TOKENS
                        )
                    ),
                ),
                timeout=60,
            )
            return chunk_tokens
        except grpc.RpcError as error:
            limit = re.search(r"chunk_tokens: must be \d+\.\.(\d+)", error.details() or "")
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT or limit is None:
                raise
            chunk_tokens = int(limit.group(1))
            print(f"{collection_id}: gateway allows chunk_tokens up to {chunk_tokens}")
    raise RuntimeError(f"cannot create collection {collection_id}")


def _index(channel: grpc.Channel, data: Dataset, folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True)
    for doc_id in data.documents:
        (folder / f"{doc_id}.txt").write_text(data.file_text(doc_id), encoding="utf-8")
    collections = collection_pb2_grpc.CollectionServiceStub(channel)
    documents_stub = document_pb2_grpc.DocumentServiceStub(channel)
    operations = operation_pb2_grpc.OperationServiceStub(channel)
    chunk_tokens = _create_collection(collections, data.name)
    started = time.perf_counter()
    operation = documents_stub.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent=f"collections/{data.name}", source_path=str(folder)
        ),
        timeout=60,
    )
    while not operation.done:
        if time.perf_counter() - started > INDEX_TIMEOUT_S:
            raise TimeoutError(f"indexing {data.name} took over {INDEX_TIMEOUT_S}s")
        time.sleep(0.5)
        operation = operations.GetOperation(
            operation_pb2.GetOperationRequest(name=operation.name), timeout=60
        )
    seconds = time.perf_counter() - started
    if operation.state != operation_pb2.OPERATION_STATE_SUCCEEDED:
        raise RuntimeError(f"indexing {data.name} failed: {operation}")
    return {
        "chunk_tokens": chunk_tokens,
        "documents_indexed": len(data.documents),
        "documents_empty_skipped": data.empty,
        "chunks": int(operation.progress.chunks_done),
        "index_seconds": round(seconds, 2),
    }


def _search(stub: Any, collection: str, query: str, mode: str) -> tuple[list[str], float, int]:
    """Documents by best rank (at most DEPTH), first page's ms, chunk hits read."""
    search_mode, fusion, expansion = MODES[mode]
    hits: list[str] = []
    page_token = ""
    first_ms = 0.0
    for page in range(MAX_PAGES):
        started = time.perf_counter()
        response = stub.Search(
            search_pb2.SearchRequest(
                collection=f"collections/{collection}",
                query=query[:MAX_QUERY_CHARS],
                top_k=PAGE_SIZE,
                mode=search_mode,
                fusion=fusion,
                query_expansion=expansion,
                page_token=page_token,
            ),
            timeout=60,
        )
        if page == 0:
            first_ms = (time.perf_counter() - started) * 1000
        hits.extend(Path(result.source_path).stem for result in response.results)
        page_token = response.next_page_token
        if not page_token or not response.results or len(set(hits)) >= DEPTH:
            break
    return best_rank_documents(hits)[:DEPTH], first_ms, len(hits)


def _run_mode(stub: Any, data: Dataset, mode: str) -> dict[str, Any]:
    for query in list(data.queries.values())[:WARMUP_QUERIES]:
        with contextlib.suppress(grpc.RpcError):  # failures are counted below
            _search(stub, data.name, query, mode)
    runs: Runs = {}
    latencies: list[float] = []
    hits: list[int] = []
    errors: dict[str, str] = {}
    for qid, query in data.queries.items():
        try:
            runs[qid], ms, read = _search(stub, data.name, query, mode)
        except grpc.RpcError as error:
            errors[qid] = f"{error.code().name}: {error.details()}"
            continue
        latencies.append(ms)
        hits.append(read)
    if not runs:
        # The mode does not work at all: say so and go on with the others.
        first = next(iter(errors.values()))
        print(f"  {mode}: every query failed, e.g. {first}", flush=True)
        return {"failed_queries": len(errors), "error": first}
    row: dict[str, Any] = dict(evaluate(runs, data.qrels).as_dict())
    row["latency_p50_ms"] = round(statistics.median(latencies), 2)
    row["chunk_hits_read_mean"] = round(statistics.fmean(hits), 1)
    row["documents_returned_mean"] = round(statistics.fmean(len(r) for r in runs.values()), 1)
    row["failed_queries"] = len(errors)
    if errors:
        row["errors_sample"] = dict(list(errors.items())[:5])
    return row


def run_mesh(datasets: list[Dataset]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="semantik-quality-") as scratch:
        root = Path(scratch)
        mesh = Mesh(root / "mesh", MeshPorts.free())
        mesh.start(timeout_s=300)
        try:
            token = mesh.bootstrap_admin("bench", "bench password 0123")
            channel = public_channel(mesh.grpc_target, token)
            stub = search_pb2_grpc.SearchServiceStub(channel)
            for data in datasets:
                print(f"indexing {data.name} ({len(data.documents)} documents) ...", flush=True)
                indexed = _index(channel, data, root / "corpus" / data.name)
                print(f"  {indexed['chunks']} chunks in {indexed['index_seconds']}s", flush=True)
                modes: dict[str, Any] = {}
                for mode in MODES:
                    print(f"  {mode}: {len(data.queries)} queries ...", flush=True)
                    modes[mode] = _run_mode(stub, data, mode)
                out[data.name] = {"index": indexed, "modes": modes}
            channel.close()
        finally:
            mesh.stop()
    return out


# --- report ------------------------------------------------------------------


def _print_table(results: dict[str, Any]) -> None:
    print(f"{'dataset':<10}{'run':<34}{'nDCG@10':>9}{'R@100':>8}{'MRR@10':>8}{'q':>5}{'p50 ms':>9}")
    for name, entry in results["datasets"].items():
        rows: list[tuple[str, dict[str, Any]]] = list(entry.get("modes", {}).items())
        rows += [(REFERENCE_LABELS[key], row) for key, row in entry["reference"].items()]
        for label, row in rows:
            if "error" in row:
                print(f"{name:<10}{label:<34}  failed: {row['error'][:60]}")
                continue
            latency = row.get("latency_p50_ms")
            print(
                f"{name:<10}{label:<34}{row['ndcg@10']:>9.3f}{row['recall@100']:>8.3f}"
                f"{row['mrr@10']:>8.3f}{row['queries']:>5}"
                f"{'' if latency is None else f'{latency:.1f}':>9}"
            )
        if "sparse_minus_reference" in entry:
            diff = entry["sparse_minus_reference"]
            print(
                f"{name:<10}{'sparse - bm25s (our analyser)':<34}{diff['ndcg@10']:>+9.3f}"
                f"{diff['recall@100']:>+8.3f}{diff['mrr@10']:>+8.3f}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument(
        "--reference-only", action="store_true", help="only the bm25s reference; no mesh, no JSON"
    )
    parser.add_argument("--datasets", nargs="+", choices=DATASET_NAMES, default=DATASET_NAMES)
    args = parser.parse_args(argv)

    terms, analyzer = analyzer_terms()
    datasets = [load_dataset(name) for name in args.datasets]
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "parameters": {
            "model": MODEL,
            "chunk_tokens": CHUNK_TOKENS,
            "overlap_tokens": OVERLAP_TOKENS,
            "depth_documents": DEPTH,
            "page_size": PAGE_SIZE,
            "fusions": {
                "hybrid_rrf": "RRF",
                "hybrid_dbsf": "DBSF with RM3 (the default)",
                "hybrid_dbsf_no_rm3": "DBSF",
            },
            "bm25": {"implementation": f"bm25s {bm25s.__version__}", "method": "lucene"},
            "k1": K1,
            "b": B,
            "analyzer": analyzer,
            "document_file": "title + '\\n\\n' + text, named <id>.txt",
            "bm25_document": "title + ' ' + text",
        },
        "datasets": {},
    }
    for data in datasets:
        results["datasets"][data.name] = {
            "documents": len(data.documents) + len(data.empty),
            "queries": len(data.queries),
            "reference": {key: row.as_dict() for key, row in reference(data, terms).items()},
        }
    if not args.reference_only:
        for name, entry in run_mesh(datasets).items():
            target = results["datasets"][name]
            target["index"] = entry["index"]
            target["modes"] = entry["modes"]
            results["parameters"]["chunk_tokens"] = entry["index"]["chunk_tokens"]
            sparse, ref = entry["modes"]["sparse"], target["reference"]["bm25_analyzer"]
            if "error" not in sparse:
                target["sparse_minus_reference"] = {
                    metric: round(sparse[metric] - ref[metric], 4) for metric in METRICS
                }
    print(f"analyser: {analyzer}")
    _print_table(results)
    if args.reference_only:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")
    broken = [
        f"{name} {mode}"
        for name, entry in results["datasets"].items()
        for mode, row in entry["modes"].items()
        if "error" in row
    ]
    if broken:
        raise SystemExit(f"modes that failed on every query: {', '.join(broken)}")


if __name__ == "__main__":
    main()
