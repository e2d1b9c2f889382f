"""Wiring: config, handler, the models loaded in the background, `run_server`.

The server listens at once with health NOT_SERVING; the embedding model and
the reranker (when RERANKER_MODEL is set) load and warm up in the background,
and only then does readiness pass. A model that cannot be loaded stops the
process with a non-zero exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc

from semantik.internal.v1 import embedder_pb2, embedder_pb2_grpc
from servicekit import service_auth
from servicekit.config import ConfigError
from servicekit.server import Registration, configure_logging, run_server
from services.embedder.batcher import Batcher
from services.embedder.config import EmbedderConfig
from services.embedder.handler import EmbedderHandler
from services.embedder.model import (
    EmbeddingModel,
    ModelError,
    check_precision,
    load_model,
    resolve_device,
    resolve_model,
)
from services.embedder.reranker import Reranker, check_reranker, load_reranker

log = logging.getLogger(__name__)

SERVICE_NAME = embedder_pb2.DESCRIPTOR.services_by_name["EmbedderService"].full_name

# The first forward passes of a shape are slow (allocation, kernel choice):
# a lone short query (the search hot path) and a full batch of long texts.
WARM_UP_QUERY = "how does the embedder warm up"
WARM_UP_DOCUMENT = "A sentence that repeats until it passes the model's token limit. " * 64


class EmbedderApp:
    def __init__(
        self,
        config: EmbedderConfig,
        *,
        load: Callable[[EmbedderConfig], EmbeddingModel] = load_model,
        load_reranker: Callable[[EmbedderConfig], Reranker | None] = load_reranker,
        on_load_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.config = config
        self.handler = EmbedderHandler()
        self.error: BaseException | None = None
        self._load = load
        self._load_reranker = load_reranker
        self._on_load_failure = on_load_failure
        self._batcher: Batcher | None = None
        self._ready = False
        self._loading: asyncio.Task[None] | None = None

    @property
    def registration(self) -> Registration:
        def add(server: grpc.aio.Server) -> None:
            embedder_pb2_grpc.add_EmbedderServiceServicer_to_server(self.handler, server)

        return Registration(SERVICE_NAME, add)

    async def readiness_check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the model failed to load: {self.error}")
        if not self._ready:
            raise RuntimeError("the models are loading")

    async def start(self) -> None:
        self._loading = asyncio.create_task(self._load_and_warm_up(), name="embedder-load")

    async def _load_and_warm_up(self) -> None:
        try:
            # Loading, tracing, warm-up and every forward pass run on this one
            # thread, so torch keeps a single OpenMP worker team (see Batcher).
            torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder-torch")
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(torch_thread, self._load, self.config)
            reranker = await loop.run_in_executor(torch_thread, self._load_reranker, self.config)
            batch_tokens = self.config.for_device(model.device.type).max_batch_tokens
            assert batch_tokens is not None  # for_device fills it in
            self._batcher = Batcher(
                model,
                max_batch_tokens=batch_tokens,
                max_queued_texts=max(self.config.max_queued_texts, 1),
                executor=torch_thread,
                reranker=reranker,
            )
            self._batcher.start()
            for _ in range(3):
                await self._batcher.embed([WARM_UP_QUERY], query=True)
            await self._batcher.embed([WARM_UP_DOCUMENT] * 8)
            if reranker is not None:
                for _ in range(3):
                    await self._batcher.rerank(WARM_UP_QUERY, [WARM_UP_QUERY])
                await self._batcher.rerank(WARM_UP_QUERY, [WARM_UP_DOCUMENT] * 8)
            self.handler.attach(model, self._batcher)
            self._ready = True
            # InfoResponse describes the embedding model only: the reranker is logged.
            if reranker is not None:
                log.info(
                    "models warmed up: embedding %s, reranker %s (%s, %d tokens, %s)",
                    model.name,
                    reranker.name,
                    reranker.kind,
                    reranker.max_tokens,
                    reranker.precision,
                )
            else:
                log.info("model warmed up: %s (no reranker)", model.name)
        except Exception as exc:
            log.error("the embedding model cannot be served: %s", exc)
            self.error = exc
            if self._on_load_failure is not None:
                self._on_load_failure(exc)

    async def close(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading
        if self._batcher is not None:
            await self._batcher.close()


def check_config(config: EmbedderConfig) -> None:
    """Fails fast on settings that can never work, before the server listens."""
    device = resolve_device(config.device)
    config = config.for_device(device.type)
    assert config.model is not None and config.quantization is not None
    check_precision(config.quantization, device)
    resolve_model(config.model)
    if check_reranker(config) is not None:
        precision = config.reranker_precision
        assert precision is not None
        setting = (
            "RERANKER_QUANTIZATION" if config.reranker_quantization else "DEFAULT_QUANTIZATION"
        )
        check_precision(precision, device, setting)


async def serve(config: EmbedderConfig) -> EmbedderApp:
    def stop_process(_: BaseException) -> None:
        # run_server shuts down gracefully on SIGTERM; main() then exits non-zero.
        os.kill(os.getpid(), signal.SIGTERM)

    app = EmbedderApp(config, on_load_failure=stop_process)
    await run_server(
        component="embedder",
        address=config.address,
        services=[app.registration],
        readiness_check=app.readiness_check,
        on_start=app.start,
        on_shutdown=app.close,
        interceptors=service_auth.server_interceptors(),
    )
    return app


def main() -> None:
    configure_logging("embedder")
    service_auth.require_service_token("embedder")
    try:
        config = EmbedderConfig.from_env()
        check_config(config)
    except (ConfigError, ModelError) as exc:
        log.error("%s", exc)
        sys.exit(2)
    app = asyncio.run(serve(config))
    if app.error is not None:
        sys.exit(1)
