"""EmbedderService (proto/semantik/internal/v1/embedder.proto): one method per RPC."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

from semantik.internal.v1 import embedder_pb2, embedder_pb2_grpc
from servicekit.errors import FieldViolations, unavailable
from servicekit.grpc_types import ServicerContext
from services.embedder.batcher import Batcher
from services.embedder.model import EmbeddingModel, Embeddings

Context = ServicerContext

MAX_TEXTS = 2048
# Requests of one EmbedStream being embedded at once. Past this the handler
# stops reading the stream, so HTTP/2 flow control slows the sender down.
STREAM_IN_FLIGHT = 32

_KINDS = (
    embedder_pb2.INPUT_KIND_UNSPECIFIED,
    embedder_pb2.INPUT_KIND_DOCUMENT,
    embedder_pb2.INPUT_KIND_QUERY,
)


def validate(texts: Sequence[str], kind: int = 0, request_id: str = "") -> None:
    """INVALID_ARGUMENT naming every bad field; `request_id` says which stream request."""
    where = f" (request_id {request_id!r})" if request_id else ""
    violations = FieldViolations()
    if not texts:
        violations.add("texts", f"at least one text is required{where}")
    elif len(texts) > MAX_TEXTS:
        violations.add("texts", f"at most {MAX_TEXTS} texts per request, got {len(texts)}{where}")
    else:
        for index, text in enumerate(texts):
            if not text:
                violations.add(f"texts[{index}]", f"must not be empty{where}")
    if kind not in _KINDS:
        violations.add("kind", f"unknown InputKind {kind}{where}")
    violations.raise_if_any()


def _deadline(context: Context) -> float | None:
    """The caller's deadline on the batcher's clock (time.monotonic)."""
    left = context.time_remaining()
    return None if left is None else time.monotonic() + float(left)


def _embeddings(result: Embeddings) -> list[embedder_pb2.Embedding]:
    return [
        embedder_pb2.Embedding(values=values, token_count=count, truncated=truncated)
        for values, count, truncated in zip(
            result.vectors.tolist(), result.token_counts, result.truncated, strict=True
        )
    ]


class EmbedderHandler(embedder_pb2_grpc.EmbedderServiceServicer):  # type: ignore[misc]
    """Answers UNAVAILABLE until the server attaches the loaded model."""

    def __init__(self) -> None:
        self._model: EmbeddingModel | None = None
        self._batcher: Batcher | None = None

    def attach(self, model: EmbeddingModel, batcher: Batcher) -> None:
        self._model = model
        self._batcher = batcher

    def _loaded(self) -> tuple[EmbeddingModel, Batcher]:
        if self._model is None or self._batcher is None:
            raise unavailable("the embedding model is still loading", retry_after_s=1.0)
        return self._model, self._batcher

    async def _embed(
        self, texts: Sequence[str], kind: int, deadline: float | None, request_id: str = ""
    ) -> Embeddings:
        validate(texts, kind, request_id)
        _, batcher = self._loaded()
        return await batcher.embed(
            texts, query=kind == embedder_pb2.INPUT_KIND_QUERY, deadline=deadline
        )

    async def Embed(
        self, request: embedder_pb2.EmbedRequest, context: Context
    ) -> embedder_pb2.EmbedResponse:
        result = await self._embed(request.texts, request.kind, _deadline(context))
        return embedder_pb2.EmbedResponse(embeddings=_embeddings(result))

    async def EmbedStream(
        self, request_iterator: AsyncIterator[embedder_pb2.EmbedStreamRequest], context: Context
    ) -> AsyncIterator[embedder_pb2.EmbedStreamResponse]:
        deadline = _deadline(context)
        # Tasks in request order: they run concurrently, answers leave in order.
        # An error (bad request, full queue) ends the stream after the answers
        # to every earlier request.
        in_order: asyncio.Queue[asyncio.Task[embedder_pb2.EmbedStreamResponse] | None] = (
            asyncio.Queue(maxsize=STREAM_IN_FLIGHT)
        )

        async def one(request: embedder_pb2.EmbedStreamRequest) -> embedder_pb2.EmbedStreamResponse:
            result = await self._embed(request.texts, request.kind, deadline, request.request_id)
            return embedder_pb2.EmbedStreamResponse(
                embeddings=_embeddings(result), request_id=request.request_id
            )

        async def read() -> None:
            try:
                async for request in request_iterator:
                    task = asyncio.create_task(one(request))
                    try:
                        await in_order.put(task)
                    except BaseException:
                        task.cancel()  # the stream is gone: nobody will read this answer
                        raise
            finally:
                await in_order.put(None)

        reader = asyncio.create_task(read())
        try:
            while (task := await in_order.get()) is not None:
                yield await task
            await reader  # a broken request stream raises here
        finally:
            reader.cancel()
            while not in_order.empty():
                left = in_order.get_nowait()
                if left is None:
                    continue
                if left.done() and not left.cancelled():
                    left.exception()  # retrieved, so asyncio does not log it as lost
                left.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def Tokenize(
        self, request: embedder_pb2.TokenizeRequest, context: Context
    ) -> embedder_pb2.TokenizeResponse:
        validate(request.texts)
        model, _ = self._loaded()
        spans = await asyncio.to_thread(model.tokenize, request.texts)
        return embedder_pb2.TokenizeResponse(
            tokenizations=[embedder_pb2.Tokenization(starts=s.starts, ends=s.ends) for s in spans]
        )

    async def Info(
        self, request: embedder_pb2.InfoRequest, context: Context
    ) -> embedder_pb2.InfoResponse:
        model, _ = self._loaded()
        return embedder_pb2.InfoResponse(
            model=model.name,
            dimensions=model.dimensions,
            max_tokens=model.max_tokens,
            precision=model.precision,
            device=str(model.device),
            memory_bytes=model.memory_bytes,
        )
