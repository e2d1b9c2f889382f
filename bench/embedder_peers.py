"""The contenders of `make bench-embedder` other than our gRPC server.

In-process sentence-transformers (the baseline), and infinity-emb, a peer
embedding server, run from its own virtual environment (`.venv-infinity`,
made by scripts/bench-infinity-env.sh) and driven over its OpenAI-style HTTP
API.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from bench.embedder_stats import Pass, Vectors
from semantik_runner.ports import free_port
from semantik_runner.processes import stop_child

ROOT = Path(__file__).resolve().parents[1]
INFINITY = ROOT / ".venv-infinity" / "bin" / "infinity_emb"
INFINITY_MODEL_NAME = "all-MiniLM-L6-v2"


class InProcess:
    """sentence-transformers in this process: `encode` in batches of `batch_size`.

    `encode` sorts the texts by length and runs batches of `batch_size`; a
    forward hook times each batch's forward pass (tokenizing excluded there,
    included in the pass's wall time).
    """

    def __init__(self, model_dir: Path, batch_size: int, threads: int) -> None:
        torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        self._model.eval()
        self._batch_size = batch_size

    def warm_up(self, texts: list[str]) -> None:
        self._model.encode(texts, batch_size=self._batch_size)

    def measure(self, texts: list[str]) -> Pass:
        started: list[float] = []
        batch_ms: list[float] = []

        def before(*_: Any) -> None:
            started.append(time.perf_counter())

        def after(*_: Any) -> None:
            batch_ms.append((time.perf_counter() - started[-1]) * 1000)

        model = self._model
        handles = [model.register_forward_pre_hook(before), model.register_forward_hook(after)]
        try:
            begin = time.perf_counter()
            vectors = model.encode(
                texts, batch_size=self._batch_size, convert_to_numpy=True, normalize_embeddings=True
            )
            seconds = time.perf_counter() - begin
        finally:
            for handle in handles:
                handle.remove()
        return Pass(
            "inprocess", "encode", 1, seconds, np.asarray(vectors, dtype=np.float32), batch_ms
        )


class InfinityUnavailableError(RuntimeError):
    """infinity-emb cannot run here; the message says exactly why."""


@contextmanager
def infinity_server(
    model_dir: Path, batch_size: int, threads: int, log_path: Path, timeout_s: float = 300
) -> Iterator[str]:
    """infinity-emb serving `model_dir` (float32, CPU, torch) on a free loopback port."""
    if not INFINITY.is_file():
        raise InfinityUnavailableError(
            f"{INFINITY.relative_to(ROOT)} is missing: run scripts/bench-infinity-env.sh"
        )
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(INFINITY),
        "v2",
        "--model-id",
        str(model_dir),
        "--served-model-name",
        INFINITY_MODEL_NAME,
        "--engine",
        "torch",
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--batch-size",
        str(batch_size),
        "--no-vector-disk-cache",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
        "DO_NOT_TRACK": "1",
        "OMP_NUM_THREADS": str(threads),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise InfinityUnavailableError(
                    f"infinity_emb exited with {process.returncode} before serving; "
                    f"log {log_path}:\n{tail}"
                )
            try:
                if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise InfinityUnavailableError(
                    f"infinity_emb not healthy after {timeout_s:.0f}s; log {log_path}"
                )
            time.sleep(0.5)
        yield base_url
    finally:
        stop_child(process, signal.SIGTERM, 20.0)


async def infinity_pass(
    base_url: str, requests: list[list[str]], concurrency: int, dimensions: int
) -> Pass:
    """POST /embeddings with `concurrency` requests in flight, every text once."""
    total = sum(len(texts) for texts in requests)
    vectors: Vectors = np.empty((total, dimensions), dtype=np.float32)
    offsets = np.cumsum([0, *(len(texts) for texts in requests)]).tolist()
    latencies: list[float] = [0.0] * len(requests)
    pending: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        pending.put_nowait(index)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base_url, timeout=600.0, limits=limits) as client:

        async def worker() -> None:
            while not pending.empty():
                index = pending.get_nowait()
                begin = time.perf_counter()
                response = await client.post(
                    "/embeddings",
                    json={"model": INFINITY_MODEL_NAME, "input": requests[index]},
                )
                response.raise_for_status()
                rows = sorted(response.json()["data"], key=lambda row: int(row["index"]))
                latencies[index] = (time.perf_counter() - begin) * 1000
                start = offsets[index]
                vectors[start : start + len(rows)] = np.asarray(
                    [row["embedding"] for row in rows], dtype=np.float32
                )

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - begin
    return Pass("infinity", "http", concurrency, seconds, vectors, latencies)
