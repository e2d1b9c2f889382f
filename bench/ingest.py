"""`make bench-ingest`: end-to-end ingest throughput against the embedder alone.

Starts the whole mesh on free ports (embedded stores, CPU MiniLM), creates the
first admin and, per set, a collection with the default chunking; writes the
set's files (not timed) and indexes them through the public API:

- `cranfield`: ../shared/datasets/cranfield, one `<id>.txt` file per
  non-empty document (`title + "\\n\\n" + text`, as bench/quality.py writes it);
- `mixed`: `tests/documents.py`'s `write_corpus` (txt, md, html, pdf, docx,
  pptx, eml with an attachment; deterministic), with `scanned_every=0`, so no
  page goes through OCR;
- OCR apart: a handful of one-page scanned PDFs in their own collection,
  timed on their own (not part of the ratio).

End to end is the wall time from `ImportDocuments` to the operation's
SUCCEEDED, polled every POLL_S; documents/s and chunks/s come from the
operation's final progress. Then the chunk texts that were indexed are read
back from metadata (`MetadataService.ListDocuments`, chunk ids as the indexer
derives them, `HydrateChunks`) and embedded again through the embedder's
`Embed` on the same mesh, in its best client mode (bench/README.md: unary,
EMBED_IN_FLIGHT requests of EMBED_TEXTS_PER_REQUEST texts in flight). The
ratio is end-to-end chunks/s over embedder-alone chunks/s; the issue asks
for at least TARGET_RATIO. Prints a table and writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench.datasets import documents as dataset_documents
from semantik.internal.v1 import (
    embedder_pb2,
    embedder_pb2_grpc,
    metadata_pb2,
    metadata_pb2_grpc,
)
from semantik.v1 import (
    collection_pb2,
    collection_pb2_grpc,
    document_pb2,
    document_pb2_grpc,
    operation_pb2,
    operation_pb2_grpc,
)
from semantik_cli.channels import public_channel
from semantik_runner.mesh import Mesh, MeshPorts
from servicekit.service_auth import METADATA_KEY
from services.indexer.ingest import chunk_id
from tests.documents import write_corpus

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ingest.json"
SETS = ("cranfield", "mixed")
DEFAULT_FILES = 2000
QUICK_FILES = 40
QUICK_CRANFIELD_DOCS = 100
OCR_PAGES = 5
QUICK_OCR_PAGES = 1
SEED = 0
TARGET_RATIO = 0.9
# The embedder's best client mode on CPU (bench/README.md, `make bench-embedder`).
EMBED_TEXTS_PER_REQUEST = 32
EMBED_IN_FLIGHT = 16
WARMUP_REQUESTS = 4
POLL_S = 0.25
INDEX_TIMEOUT_S = 3600.0
LIST_PAGE = 1000
HYDRATE_BATCH = 500  # ids per HydrateChunks call: well under gRPC's 4 MiB answers
OCR_COLLECTION = "ocr"
# Indexer settings that shape the pipeline, as this environment passes them on.
INDEXER_SETTINGS = ("EMBED_BATCH_TEXTS", "INDEXER_DOCUMENT_CONCURRENCY", "INDEXER_WORKER_JOBS")


# --- corpora (not timed) ------------------------------------------------------


def cranfield_file_text(title: str, text: str) -> str:
    """`title + "\\n\\n" + text`, `\\r` dropped, as bench/quality.py writes documents."""
    parts = (title.replace("\r", "").strip(), text.replace("\r", "").strip())
    return "\n\n".join(part for part in parts if part)


def write_cranfield(
    folder: Path, docs: Mapping[str, tuple[str, str]], limit: int | None = None
) -> list[str]:
    """One `<id>.txt` per non-empty document (the first `limit`); returns the ids written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for doc_id, (title, text) in docs.items():
        if limit is not None and len(written) >= limit:
            break
        body = cranfield_file_text(title, text)
        if not body:
            continue  # Cranfield 471 and 995 are empty
        (folder / f"{doc_id}.txt").write_text(body, encoding="utf-8")
        written.append(doc_id)
    return written


def write_mixed(folder: Path, count: int, seed: int = SEED) -> dict[str, int]:
    """`write_corpus` with no scanned pages; files per format."""
    files = write_corpus(folder, count, seed, scanned_every=0)
    return dict(sorted(Counter(f.format for f in files).items()))


def write_scanned(folder: Path, pages: int, seed: int = SEED) -> int:
    """`pages` one-page scanned PDFs (text as an image only: OCR reads them)."""
    return len(write_corpus(folder, pages, seed, formats=("pdf",), scanned_every=1))


# --- measurements ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One poll of the operation: seconds since ImportDocuments, its progress."""

    seconds: float
    documents_total: int
    documents_done: int
    chunks_done: int


@dataclass(frozen=True)
class Ingest:
    documents: int
    documents_failed: int
    chunks: int
    bytes: int
    seconds: float  # ImportDocuments to SUCCEEDED seen by the poll
    server_seconds: float | None  # the operation's end_time - create_time
    errors: list[tuple[str, str]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


@dataclass(frozen=True)
class EmbedderAlone:
    texts: int
    tokens: int
    seconds: float


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


def ratio(end_to_end_per_s: float, alone_per_s: float) -> float:
    """End-to-end chunks/s over the embedder alone on the same chunks."""
    return round(end_to_end_per_s / alone_per_s, 3) if alone_per_s > 0 else 0.0


def timeline(samples: Sequence[Sample], seconds: float) -> dict[str, float | int | None]:
    """Where the wall time went, as far as the polled progress (RUNNING only) tells.

    `scan_s`: until the operation knew its documents (queue, scan);
    `first_chunk_s`: until a first chunk was reported; `last_running_s` and
    `chunks_at_last_running`: the last poll before SUCCEEDED; `tail_s`: from
    there to SUCCEEDED (the last documents, optimize, flush; progress goes out
    at most every 0.3 s, so this is an upper bound); `steady_chunks_per_s`:
    chunks/s between the first chunk and the last RUNNING poll, without the
    start and the tail. None where no poll saw it.
    """
    scan = next((s for s in samples if s.documents_total > 0), None)
    first_chunk = next((s for s in samples if s.chunks_done > 0), None)
    last = samples[-1] if samples else None
    steady = None
    if first_chunk is not None and last is not None and last.seconds > first_chunk.seconds:
        steady = rate(
            last.chunks_done - first_chunk.chunks_done, last.seconds - first_chunk.seconds
        )
    return {
        "scan_s": None if scan is None else round(scan.seconds, 2),
        "first_chunk_s": None if first_chunk is None else round(first_chunk.seconds, 2),
        "last_running_s": None if last is None else round(last.seconds, 2),
        "chunks_at_last_running": None if last is None else last.chunks_done,
        "tail_s": None if last is None else round(seconds - last.seconds, 2),
        "steady_chunks_per_s": steady,
    }


def set_row(name: str, files: int, ingest: Ingest, alone: EmbedderAlone) -> dict[str, Any]:
    chunks_per_s = rate(ingest.chunks, ingest.seconds)
    alone_per_s = rate(alone.texts, alone.seconds)
    row_ratio = ratio(chunks_per_s, alone_per_s)
    return {
        "set": name,
        "files": files,
        "documents": ingest.documents,
        "documents_failed": ingest.documents_failed,
        "chunks": ingest.chunks,
        "tokens": alone.tokens,
        "bytes": ingest.bytes,
        "seconds": round(ingest.seconds, 2),
        "server_seconds": ingest.server_seconds,
        "docs_per_s": rate(ingest.documents, ingest.seconds),
        "chunks_per_s": chunks_per_s,
        "embedder_alone_seconds": round(alone.seconds, 2),
        "embedder_alone_chunks_per_s": alone_per_s,
        "ratio": row_ratio,
        "meets_target": row_ratio >= TARGET_RATIO,
        "timeline": timeline(ingest.samples, ingest.seconds),
        "errors": [{"source_path": path, "reason": reason} for path, reason in ingest.errors],
    }


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    header = (
        f"{'set':<11}{'files':>7}{'docs':>7}{'chunks':>8}{'seconds':>9}{'docs/s':>9}"
        f"{'chunks/s':>10}{'embedder chunks/s':>19}{'ratio':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['set']:<11}{row['files']:>7}{row['documents']:>7}{row['chunks']:>8}"
            f"{row['seconds']:>9.1f}{row['docs_per_s']:>9.1f}{row['chunks_per_s']:>10.1f}"
            f"{row['embedder_alone_chunks_per_s']:>19.1f}{row['ratio']:>7.2f}x"
        )
    return "\n".join(lines)


# --- the mesh -----------------------------------------------------------------------


def _create_collection(channel: grpc.Channel, collection_id: str) -> dict[str, int]:
    """With the default chunking; returns it as the gateway stored it."""
    collections = collection_pb2_grpc.CollectionServiceStub(channel)
    created = collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id=collection_id, collection=collection_pb2.Collection()
        ),
        timeout=60,
    )
    return {
        "chunk_tokens": int(created.chunking.chunk_tokens),
        "overlap_tokens": int(created.chunking.overlap_tokens),
    }


def _import(channel: grpc.Channel, collection_id: str, folder: Path) -> Ingest:
    documents = document_pb2_grpc.DocumentServiceStub(channel)
    operations = operation_pb2_grpc.OperationServiceStub(channel)
    samples: list[Sample] = []
    started = time.perf_counter()
    operation = documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent=f"collections/{collection_id}", source_path=str(folder)
        ),
        timeout=60,
    )
    while not operation.done:
        elapsed = time.perf_counter() - started
        if elapsed > INDEX_TIMEOUT_S:
            raise TimeoutError(f"indexing {collection_id} took over {INDEX_TIMEOUT_S}s")
        progress = operation.progress
        samples.append(
            Sample(
                elapsed,
                int(progress.documents_total),
                int(progress.documents_done),
                int(progress.chunks_done),
            )
        )
        time.sleep(POLL_S)
        operation = operations.GetOperation(
            operation_pb2.GetOperationRequest(name=operation.name), timeout=60
        )
    seconds = time.perf_counter() - started
    if operation.state != operation_pb2.OPERATION_STATE_SUCCEEDED:
        raise RuntimeError(f"indexing {collection_id} failed: {operation}")
    progress = operation.progress
    server_seconds = None
    if operation.HasField("create_time") and operation.HasField("end_time"):
        server_ns = operation.end_time.ToNanoseconds() - operation.create_time.ToNanoseconds()
        server_seconds = round(server_ns / 1e9, 2)
    return Ingest(
        documents=int(progress.documents_done),
        documents_failed=int(progress.documents_failed),
        chunks=int(progress.chunks_done),
        bytes=int(progress.bytes_done),
        seconds=seconds,
        server_seconds=server_seconds,
        errors=[(e.source_path, e.reason) for e in operation.document_errors],
        samples=samples,
    )


def indexed_chunk_texts(
    metadata: Any, service_token: str, collection_id: str
) -> tuple[list[str], int]:
    """The indexed chunks' texts (document listing order, then chunk index) and tokens.

    Chunk ids are the indexer's own (`services.indexer.ingest.chunk_id` of the
    document's path and content hash), hydrated from metadata: exactly the
    texts that were embedded.
    """
    auth = ((METADATA_KEY, service_token),)
    ids: list[str] = []
    page_token = ""
    while True:
        page = metadata.ListDocuments(
            metadata_pb2.ListDocumentsRequest(
                parent=f"collections/{collection_id}", page_size=LIST_PAGE, page_token=page_token
            ),
            metadata=auth,
            timeout=60,
        )
        for document in page.documents:
            if document.state != document_pb2.DOCUMENT_STATE_INDEXED:
                continue
            ids += [
                chunk_id(collection_id, document.source_path, document.content_hash, index)
                for index in range(document.chunk_count)
            ]
        page_token = page.next_page_token
        if not page_token:
            break
    texts: list[str] = []
    tokens = 0
    for start in range(0, len(ids), HYDRATE_BATCH):
        wanted = ids[start : start + HYDRATE_BATCH]
        found = metadata.HydrateChunks(
            metadata_pb2.HydrateChunksRequest(collection_id=collection_id, chunk_ids=wanted),
            metadata=auth,
            timeout=120,
        )
        if len(found.chunks) != len(wanted):
            raise RuntimeError(
                f"{collection_id}: {len(wanted) - len(found.chunks)} of {len(wanted)} chunk ids "
                "not in metadata (did the indexer's chunk ids change?)"
            )
        texts += [hydrated.chunk.text for hydrated in found.chunks]
        tokens += sum(int(hydrated.chunk.token_count) for hydrated in found.chunks)
    return texts, tokens


def batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[start : start + size]) for start in range(0, len(texts), size)]


async def _embed_unary(
    target: str, service_token: str, requests: Sequence[Sequence[str]], in_flight: int
) -> float:
    """`in_flight` workers, each sending its next `Embed` when the last one answers; seconds."""
    auth = ((METADATA_KEY, service_token),)
    pending = list(reversed(range(len(requests))))
    async with grpc.aio.insecure_channel(target) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)

        async def worker() -> None:
            while pending:
                texts = list(requests[pending.pop()])
                response = await stub.Embed(
                    embedder_pb2.EmbedRequest(texts=texts, kind=embedder_pb2.INPUT_KIND_DOCUMENT),
                    metadata=auth,
                    timeout=600,
                )
                if len(response.embeddings) != len(texts):
                    raise RuntimeError(f"{len(texts)} texts, {len(response.embeddings)} vectors")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return time.perf_counter() - started


def embedder_alone(mesh: Mesh, texts: Sequence[str], tokens: int) -> EmbedderAlone:
    requests = batches(texts, EMBED_TEXTS_PER_REQUEST)
    target = mesh.embedder.address
    asyncio.run(_embed_unary(target, mesh.service_token, requests[:WARMUP_REQUESTS], 4))
    seconds = asyncio.run(_embed_unary(target, mesh.service_token, requests, EMBED_IN_FLIGHT))
    return EmbedderAlone(texts=len(texts), tokens=tokens, seconds=seconds)


def _warm_up_embedder(mesh: Mesh) -> None:
    """A few forward passes before the first import, so neither side pays for a cold model."""
    sentences = [f"Warm-up passage {n} on wings, lift and the boundary layer." for n in range(128)]
    asyncio.run(
        _embed_unary(
            mesh.embedder.address,
            mesh.service_token,
            batches(sentences, EMBED_TEXTS_PER_REQUEST),
            4,
        )
    )


@dataclass(frozen=True)
class Plan:
    sets: tuple[str, ...]
    files: int
    cranfield_docs: int | None
    ocr_pages: int
    seed: int
    quick: bool


def _write_set(name: str, plan: Plan, folder: Path) -> tuple[int, dict[str, Any]]:
    """Writes the set's files; returns their number and what to record about them."""
    started = time.perf_counter()
    about: dict[str, Any]
    if name == "cranfield":
        written = write_cranfield(folder, dataset_documents("cranfield"), plan.cranfield_docs)
        files, about = len(written), {"file": "title + '\\n\\n' + text, named <id>.txt"}
    elif name == "mixed":
        formats = write_mixed(folder, plan.files, plan.seed)
        files = sum(formats.values())
        about = {"formats": formats, "seed": plan.seed, "scanned_every": 0}
    else:
        raise ValueError(f"unknown set {name!r}")
    about["generation_seconds"] = round(time.perf_counter() - started, 2)
    return files, about


def run_mesh(plan: Plan, root: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    rows: list[dict[str, Any]] = []
    ocr: dict[str, Any] | None = None
    written: dict[str, tuple[int, dict[str, Any]]] = {}
    for name in plan.sets:
        print(f"writing {name} ...", flush=True)
        written[name] = _write_set(name, plan, root / "corpus" / name)
        print(f"  {written[name][0]} files in {written[name][1]['generation_seconds']}s")
    if plan.ocr_pages:
        write_scanned(root / "corpus" / OCR_COLLECTION, plan.ocr_pages, plan.seed)

    mesh = Mesh(root / "mesh", MeshPorts.free())
    mesh.start(timeout_s=300)
    try:
        token = mesh.bootstrap_admin("bench", "bench password 0123")
        channel = public_channel(mesh.grpc_target, token)
        internal = grpc.insecure_channel(
            mesh.metadata.address, options=[("grpc.max_receive_message_length", 64 << 20)]
        )
        metadata = metadata_pb2_grpc.MetadataServiceStub(internal)
        _warm_up_embedder(mesh)
        for name in plan.sets:
            files, about = written[name]
            chunking = _create_collection(channel, name)
            print(f"indexing {name} ({files} files) ...", flush=True)
            ingest = _import(channel, name, root / "corpus" / name)
            print(
                f"  {ingest.documents} documents, {ingest.chunks} chunks in {ingest.seconds:.1f}s",
                flush=True,
            )
            for path, reason in ingest.errors:
                print(f"  {path}: {reason}")
            texts, tokens = indexed_chunk_texts(metadata, mesh.service_token, name)
            if len(texts) != ingest.chunks:
                raise RuntimeError(
                    f"{name}: the operation reports {ingest.chunks} chunks, metadata {len(texts)}"
                )
            print(f"  embedder alone on the same {len(texts)} chunks ...", flush=True)
            alone = embedder_alone(mesh, texts, tokens)
            row = set_row(name, files, ingest, alone)
            row.update({"chunking": chunking, "corpus": about})
            rows.append(row)
            steps = row["timeline"]
            print(
                f"  first chunk after {steps['first_chunk_s']}s, {steps['tail_s']}s after the "
                f"last RUNNING poll, {steps['steady_chunks_per_s']} chunks/s in between",
                flush=True,
            )
            print(
                f"  {row['chunks_per_s']} chunks/s end to end, "
                f"{row['embedder_alone_chunks_per_s']} embedder alone: {row['ratio']}x",
                flush=True,
            )
        if plan.ocr_pages:
            _create_collection(channel, OCR_COLLECTION)
            print(f"indexing {plan.ocr_pages} scanned one-page PDFs (OCR) ...", flush=True)
            ingest = _import(channel, OCR_COLLECTION, root / "corpus" / OCR_COLLECTION)
            ocr = {
                "pages": plan.ocr_pages,
                "documents": ingest.documents,
                "documents_failed": ingest.documents_failed,
                "chunks": ingest.chunks,
                "seconds": round(ingest.seconds, 2),
                "seconds_per_page": round(ingest.seconds / plan.ocr_pages, 2),
                "errors": [{"source_path": p, "reason": r} for p, r in ingest.errors],
            }
            print(f"  {ocr['seconds_per_page']}s per page", flush=True)
        internal.close()
        channel.close()
    finally:
        mesh.stop()
    return rows, ocr


# --- main -----------------------------------------------------------------------------


def parse_plan(argv: Sequence[str] | None = None) -> tuple[Plan, Path]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--files", type=int, help=f"files of the mixed corpus (default {DEFAULT_FILES})"
    )
    parser.add_argument(
        "--sets", default=",".join(SETS), help="comma-separated, of: " + ", ".join(SETS)
    )
    parser.add_argument(
        "--cranfield-docs", type=int, help="only the first N non-empty documents (default all)"
    )
    parser.add_argument(
        "--ocr-pages",
        type=int,
        help=f"scanned one-page PDFs timed apart, 0 for none (default {OCR_PAGES})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_FILES} mixed files, {QUICK_CRANFIELD_DOCS} Cranfield "
        f"documents, {QUICK_OCR_PAGES} scanned page (each unless given)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default {RESULTS}")
    args = parser.parse_args(argv)
    sets = tuple(name.strip() for name in args.sets.split(",") if name.strip())
    unknown = [name for name in sets if name not in SETS]
    if unknown or not sets:
        parser.error(f"--sets: unknown {unknown}; choose from {', '.join(SETS)}")
    files = args.files if args.files is not None else (QUICK_FILES if args.quick else DEFAULT_FILES)
    cranfield_docs = args.cranfield_docs
    if cranfield_docs is None and args.quick:
        cranfield_docs = QUICK_CRANFIELD_DOCS
    ocr_pages = args.ocr_pages
    if ocr_pages is None:
        ocr_pages = QUICK_OCR_PAGES if args.quick else OCR_PAGES
    if files < 1 or (cranfield_docs is not None and cranfield_docs < 1) or ocr_pages < 0:
        parser.error("--files and --cranfield-docs must be positive, --ocr-pages not negative")
    plan = Plan(sets, files, cranfield_docs, ocr_pages, SEED, args.quick)
    return plan, args.out


def main(argv: Sequence[str] | None = None) -> None:
    plan, out = parse_plan(argv)
    wall = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="semantik-ingest-") as scratch:
        rows, ocr = run_mesh(plan, Path(scratch))
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            # 1-minute load averages at start and end: well above `cpus`
            # means something else shared the machine during the run.
            "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "parameters": {
            "quick": plan.quick,
            "sets": list(plan.sets),
            "mixed_files": plan.files,
            "cranfield_documents": plan.cranfield_docs or "all non-empty",
            "seed": plan.seed,
            "chunking": "collection defaults",
            "scanned_pdfs_in_mixed": 0,
            "ocr_pages_apart": plan.ocr_pages,
            "end_to_end": "ImportDocuments (gRPC, gateway) to SUCCEEDED, "
            f"polled every {POLL_S}s; counts from the operation's final progress",
            "embedder_alone": f"Embed unary, {EMBED_IN_FLIGHT} in flight, "
            f"{EMBED_TEXTS_PER_REQUEST} chunk texts per request (INPUT_KIND_DOCUMENT), "
            "the indexed chunk texts hydrated from metadata, same mesh",
            "indexer": {key: os.environ.get(key, "service default") for key in INDEXER_SETTINGS},
            "target_ratio": TARGET_RATIO,
        },
        "notes": [
            "The mixed corpus has no scanned PDFs (write_corpus scanned_every=0), so OCR "
            "does not dominate; `ocr` times a few scanned pages on their own.",
            "File generation is not measured.",
        ],
        "sets": {row["set"]: row for row in rows},
        "ocr": ocr,
        "done_when": {f"{row['set']}_ratio_ge_{TARGET_RATIO}": row["meets_target"] for row in rows},
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print()
    print(format_table(rows))
    if ocr is not None:
        print(f"OCR apart: {ocr['pages']} scanned pages, {ocr['seconds_per_page']}s per page")
    print(f"target: end to end >= {TARGET_RATIO}x the embedder alone")
    print(f"written to {out}")
    failed = sum(row["documents_failed"] for row in rows)
    if failed:
        raise SystemExit(f"{failed} documents failed to index (see `errors` in {out})")


if __name__ == "__main__":
    main()
