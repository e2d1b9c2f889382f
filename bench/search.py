"""`make bench-search`: search latency over JSON (Envoy) and gRPC, and quality.

Starts the whole mesh on free ports (embedded stores, CPU model), indexes
`../shared/datasets/cranfield` through the public API, then runs every judged
query one at a time through Envoy JSON and through gRPC straight to the
gateway, in hybrid mode (the default) and in dense mode. Prints a table and
writes bench/results/search.json.
"""

from __future__ import annotations

import http.client
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench.datasets import load, ndcg_at
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

RESULTS = Path(__file__).resolve().parent / "results" / "search.json"
TOP_K = 10
WARMUP_QUERIES = 20


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50": round(statistics.median(samples_ms), 3),
        "p95": round(cuts[94], 3),
        "p99": round(cuts[98], 3),
    }


def _index(channel: grpc.Channel, folder: Path) -> tuple[int, float]:
    collections = collection_pb2_grpc.CollectionServiceStub(channel)
    documents = document_pb2_grpc.DocumentServiceStub(channel)
    operations = operation_pb2_grpc.OperationServiceStub(channel)
    collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id="cranfield",
            # One chunk per abstract for most documents: MiniLM's limit is 256.
            collection=collection_pb2.Collection(
                chunking=collection_pb2.ChunkingConfig(chunk_tokens=254, overlap_tokens=32)
            ),
        ),
        timeout=60,
    )
    started = time.perf_counter()
    operation = documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent="collections/cranfield", source_path=str(folder)
        ),
        timeout=60,
    )
    while not operation.done:
        time.sleep(0.25)
        operation = operations.GetOperation(
            operation_pb2.GetOperationRequest(name=operation.name), timeout=60
        )
    elapsed = time.perf_counter() - started
    if operation.state != operation_pb2.OPERATION_STATE_SUCCEEDED:
        raise RuntimeError(f"indexing failed: {operation}")
    return int(operation.progress.chunks_done), elapsed


MODES = {"hybrid": "SEARCH_MODE_HYBRID", "dense": "SEARCH_MODE_DENSE"}


def _json_search(
    connection: http.client.HTTPConnection, token: str, query: str, mode: str
) -> list[str]:
    body = json.dumps({"query": query, "topK": TOP_K, "mode": MODES[mode]})
    connection.request(
        "POST",
        "/v1/collections/cranfield:search",
        body=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    response = connection.getresponse()
    payload: dict[str, Any] = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"search failed: {response.status} {payload}")
    return [Path(result["sourcePath"]).stem for result in payload.get("results", [])]


TIMING_FIELDS = ("embed_ms", "vector_query_ms", "hydrate_ms", "total_ms")


def _grpc_search(stub: Any, query: str, mode: str) -> Any:
    """The response (results and the gateway's own `timing`)."""
    return stub.Search(
        search_pb2.SearchRequest(
            collection="collections/cranfield",
            query=query,
            top_k=TOP_K,
            mode=MODES[mode],
        ),
        timeout=30,
    )


def _unique(doc_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(doc_ids))


def main() -> None:
    data = load("cranfield")
    with tempfile.TemporaryDirectory(prefix="semantik-bench-") as scratch:
        root = Path(scratch)
        corpus_dir = root / "corpus"
        corpus_dir.mkdir()
        for doc_id, text in data.corpus.items():
            (corpus_dir / f"{doc_id}.txt").write_text(text, encoding="utf-8")

        mesh = Mesh(root / "mesh", MeshPorts.free())
        mesh.start(timeout_s=300)
        try:
            token = mesh.bootstrap_admin("bench", "bench password 0123")
            channel = public_channel(mesh.grpc_target, token)
            chunks, index_s = _index(channel, corpus_dir)
            stub = search_pb2_grpc.SearchServiceStub(channel)
            connection = http.client.HTTPConnection("127.0.0.1", mesh.ports.envoy, timeout=30)
            queries = list(data.queries.items())
            per_mode = {}
            for mode in MODES:
                for _, text in queries[:WARMUP_QUERIES]:
                    _json_search(connection, token, text, mode)
                    _grpc_search(stub, text, mode)
                json_ms: list[float] = []
                grpc_ms: list[float] = []
                stages: dict[str, list[float]] = {name: [] for name in TIMING_FIELDS}
                ndcg: list[float] = []
                for query_id, text in queries:
                    started = time.perf_counter()
                    ranked = _json_search(connection, token, text, mode)
                    json_ms.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    timing = _grpc_search(stub, text, mode).timing
                    grpc_ms.append((time.perf_counter() - started) * 1000)
                    for name in TIMING_FIELDS:
                        stages[name].append(getattr(timing, name))
                    ndcg.append(ndcg_at(_unique(ranked), data.qrels[query_id], 10))
                per_mode[mode] = {
                    "json_search_ms": _percentiles(json_ms),
                    "grpc_search_ms": _percentiles(grpc_ms),
                    "json_overhead_p50_pct": round(
                        100 * (statistics.median(json_ms) / statistics.median(grpc_ms) - 1), 1
                    ),
                    "ndcg_at_10": round(statistics.fmean(ndcg), 4),
                    # Inside the gateway (SearchResponse.timing), gRPC path.
                    "gateway_timing_p50_ms": {
                        name: round(statistics.median(values), 2) for name, values in stages.items()
                    },
                }
            connection.close()
            channel.close()
        finally:
            mesh.stop()

    results = {
        "dataset": "cranfield",
        "documents": len(data.corpus),
        "queries": len(queries),
        "top_k": TOP_K,
        "modes": per_mode,
        "index_chunks": chunks,
        "index_seconds": round(index_s, 2),
        "index_chunks_per_s": round(chunks / index_s, 2),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"{'mode':<8}{'path':<18}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'nDCG@10':>10}")
    for mode, row in per_mode.items():
        for label, key in (
            ("JSON via Envoy", "json_search_ms"),
            ("gRPC to gateway", "grpc_search_ms"),
        ):
            ms = row[key]
            assert isinstance(ms, dict)
            print(
                f"{mode:<8}{label:<18}{ms['p50']:>10.2f}{ms['p95']:>10.2f}{ms['p99']:>10.2f}"
                f"{row['ndcg_at_10']:>10.4f}"
            )
    for mode, row in per_mode.items():
        inside = row["gateway_timing_p50_ms"]
        assert isinstance(inside, dict)
        print(
            f"{mode}: inside the gateway, p50 ms: "
            + ", ".join(f"{k} {v}" for k, v in inside.items())
        )
    print(f"indexed {chunks} chunks in {index_s:.1f}s ({results['index_chunks_per_s']} chunks/s)")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
