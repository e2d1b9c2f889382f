"""`make bench-metadata`: chunk COPY throughput and top-10 hydration latency.

Starts a scratch PostgreSQL 16 (the pgserver wheel) in a temporary folder and
the metadata service as its own process (it migrates the database), then:

1. COPY: writes BENCH_CHUNKS (default 1 000 000) chunk rows through the
   service's own write path (`MetadataStore.upsert_document`: one transaction
   per document, upsert of the document row, COPY of its chunks), documents of
   1000 chunks of about 800 characters, spread over 20 collections, WRITERS
   (4) documents in flight at once as the indexer sends them. Reported as
   rows per second of wall time, all of it in PostgreSQL's commit included.
   Then VACUUM (ANALYZE) and a CHECKPOINT, untimed.
2. Hydration: HydrateChunks over gRPC to the service with 10 random chunk ids
   of one collection, one call at a time after a warm-up; p50 and p99.

Writes bench/results/metadata.json (`copy_rows_per_s`, `hydrate_top10_ms`).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import grpc

from semantik.internal.v1 import metadata_pb2, metadata_pb2_grpc
from semantik_runner.ports import free_port
from semantik_runner.services import ServiceProcess
from semantik_runner.stores import PostgresServer
from services.metadata.config import MetadataConfig
from services.metadata.store import MetadataStore, NewChunk, NewCollection, NewDocument

RESULTS = Path(__file__).resolve().parent / "results" / "metadata.json"
TOTAL_CHUNKS = int(os.environ.get("BENCH_CHUNKS", "1000000"))
CHUNKS_PER_DOCUMENT = 1000
COLLECTIONS = 20
# Documents in flight at once, as the indexer sends them (one transaction each).
WRITERS = int(os.environ.get("BENCH_WRITERS", "4"))
HYDRATE_CALLS = 3000
WARMUP_CALLS = 300
TOP_K = 10

WORDS = [
    "the",
    "of",
    "and",
    "a",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "an",
    "were",
    "are",
    "which",
    "this",
    "be",
    "flow",
    "pressure",
    "boundary",
    "layer",
    "wing",
    "supersonic",
    "heat",
    "transfer",
    "shock",
    "wave",
    "laminar",
    "turbulent",
    "velocity",
    "surface",
    "theory",
    "numerical",
    "solution",
    "equations",
    "plate",
    "cylinder",
    "nozzle",
    "mach",
]


def _texts(rng: random.Random, count: int) -> list[str]:
    """`count` distinct chunk texts of about 800 characters."""
    return [" ".join(rng.choices(WORDS, k=120))[:800] for _ in range(count)]


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50": round(statistics.median(samples_ms), 3),
        "p95": round(cuts[94], 3),
        "p99": round(cuts[98], 3),
    }


async def _copy(database_url: str, rng: random.Random) -> tuple[int, float, dict[str, list[str]]]:
    """Rows written, seconds, and some chunk ids per collection for hydration."""
    config = MetadataConfig(
        address="unused",
        database_url=database_url,
        pool_size=WRITERS,
        max_overflow=0,
        pool_min_size=1,
        pool_timeout_s=30,
        pool_recycle_s=0,
        pool_pre_ping=True,
        command_timeout_s=600,
    )
    store = MetadataStore(config)
    await store.start()
    while True:  # the service migrated already; wait until the store agrees
        try:
            await store.check_ready()
            break
        except Exception:
            await asyncio.sleep(0.2)
    collections = [f"bench-{i:02d}" for i in range(COLLECTIONS)]
    for collection_id in collections:
        await store.create_collection(
            NewCollection(collection_id, "", "", "bench", 384, 200, 40, 1), timeout_s=30
        )
    pool = _texts(rng, 5000)
    documents = TOTAL_CHUNKS // CHUNKS_PER_DOCUMENT
    sample: dict[str, list[str]] = {c: [] for c in collections}
    # Build the requests first: the handler's work, not the store's.
    work: list[tuple[NewDocument, list[NewChunk]]] = []
    for number in range(documents):
        collection_id = collections[number % COLLECTIONS]
        chunks = [
            NewChunk(
                id=uuid.uuid4(),
                chunk_index=i,
                text=pool[(number * 7 + i) % len(pool)],
                start_offset=i * 700,
                end_offset=i * 700 + 800,
                token_count=150,
                page=i // 40,
            )
            for i in range(CHUNKS_PER_DOCUMENT)
        ]
        sample[collection_id].extend(str(c.id) for c in rng.sample(chunks, 20))
        document = NewDocument(
            collection_id=collection_id,
            source_path=f"/corpus/{number:06d}.txt",
            content_hash=f"{number:064x}",
            size_bytes=CHUNKS_PER_DOCUMENT * 700,
            mime_type="text/plain",
            state=1,
            error="",
            modify_time=None,
        )
        work.append((document, chunks))
    queue = iter(work)

    async def writer() -> None:
        for document, chunks in queue:
            stored = await store.upsert_document(document, chunks, timeout_s=600)
            if stored is None:
                raise RuntimeError("collection vanished")

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(WRITERS)))
    elapsed = time.perf_counter() - started
    await store.close()
    # What an operator runs after a bulk load (autovacuum would, a little
    # later, competing with the latency run for this machine's two cores).
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("VACUUM (ANALYZE) chunks", timeout=600)
        await connection.execute("CHECKPOINT", timeout=600)
    finally:
        await connection.close()
    return documents * CHUNKS_PER_DOCUMENT, elapsed, sample


def _hydrate(address: str, sample: dict[str, list[str]], rng: random.Random) -> list[float]:
    channel = grpc.insecure_channel(address)
    stub: Any = metadata_pb2_grpc.MetadataServiceStub(channel)
    collections = sorted(sample)
    samples_ms: list[float] = []
    for call in range(WARMUP_CALLS + HYDRATE_CALLS):
        collection_id = collections[call % len(collections)]
        ids = rng.sample(sample[collection_id], TOP_K)
        request = metadata_pb2.HydrateChunksRequest(collection_id=collection_id, chunk_ids=ids)
        started = time.perf_counter()
        response = stub.HydrateChunks(request, timeout=10)
        took = (time.perf_counter() - started) * 1000
        if len(response.chunks) != TOP_K:
            raise RuntimeError(f"hydrated {len(response.chunks)} of {TOP_K}")
        if call >= WARMUP_CALLS:
            samples_ms.append(took)
    channel.close()
    return samples_ms


def main() -> None:
    rng = random.Random(5)
    root = Path(tempfile.mkdtemp(prefix="semantik-bench-metadata-"))
    root.chmod(0o755)  # PostgreSQL runs as another user when we are root
    postgres = PostgresServer(root / "pg", free_port())
    service: ServiceProcess | None = None
    try:
        postgres.start()
        address = f"127.0.0.1:{free_port()}"
        service = ServiceProcess(
            name="metadata",
            env={
                "METADATA_ADDRESS": address,
                "DATABASE_URL": postgres.url,
                "OTEL_TRACES_EXPORTER": "none",
                "LOG_LEVEL": "WARNING",
                # Its own private server: no service token, even if this shell has one.
                "SERVICE_TOKEN": "",
            },
            log_path=root / "metadata.log",
            address=address,
        )
        service.start()
        service.wait_serving(60)
        rows, copy_s, sample = asyncio.run(_copy(postgres.url, rng))
        print(f"COPY: {rows} rows in {copy_s:.1f}s = {rows / copy_s:,.0f} rows/s", flush=True)
        hydrate_ms = _hydrate(address, sample, rng)
    finally:
        if service is not None:
            service.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)

    results = {
        "copy_rows": rows,
        "copy_seconds": round(copy_s, 2),
        "copy_rows_per_s": round(rows / copy_s),
        "copy_chunk_chars": 800,
        "copy_chunks_per_document": CHUNKS_PER_DOCUMENT,
        "copy_concurrent_documents": WRITERS,
        "hydrate_top10_ms": _percentiles(hydrate_ms),
        "hydrate_calls": len(hydrate_ms),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    h = results["hydrate_top10_ms"]
    assert isinstance(h, dict)
    print(f"HydrateChunks top-{TOP_K} over gRPC: p50 {h['p50']:.3f} ms, p99 {h['p99']:.3f} ms")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
