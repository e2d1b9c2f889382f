"""EmbedderService (proto/semantik/internal/v1/embedder.proto): one method per RPC."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence

from semantik.internal.v1 import embedder_pb2, embedder_pb2_grpc
from servicekit.errors import (
    FieldViolations,
    invalid_argument,
    unavailable,
)
from servicekit.grpc_types import ServicerContext
from services.embedder.batcher import Batcher
from services.embedder.model import EmbeddingModel, Embeddings, Encoded, truncate_dimensions
from services.embedder.reranker import QueryTooLong

Context = ServicerContext

MAX_TEXTS = 2048
# Documents per Rerank request (embedder.proto).
MAX_RERANK_DOCUMENTS = 1000
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


def validate_options(
    model: EmbeddingModel, kind: int, dimensions: int, task: str, request_id: str = ""
) -> None:
    """INVALID_ARGUMENT for `dimensions` or `task` the loaded model cannot honour."""
    where = f" (request_id {request_id!r})" if request_id else ""
    violations = FieldViolations()
    if dimensions < 0:
        violations.add("dimensions", f"must not be negative, got {dimensions}{where}")
    elif dimensions not in (0, model.dimensions):
        if not model.min_dimensions:
            violations.add(
                "dimensions",
                f"{model.name} has no Matryoshka truncation: use 0 or {model.dimensions}{where}",
            )
        elif not model.min_dimensions <= dimensions <= model.dimensions:
            violations.add(
                "dimensions",
                f"must lie in [{model.min_dimensions}, {model.dimensions}], "
                f"got {dimensions}{where}",
            )
    if task and not model.spec.takes_task:
        violations.add("task", f"{model.name} takes no task in its query prompt{where}")
    elif task and kind != embedder_pb2.INPUT_KIND_QUERY:
        violations.add("task", f"a task applies to queries only (kind INPUT_KIND_QUERY){where}")
    violations.raise_if_any()


def validate_rerank(request: embedder_pb2.RerankRequest) -> None:
    """INVALID_ARGUMENT for a blank query or a document count out of 1..1000.

    Empty documents are scored like any other: a search hit with no text is
    still a candidate, and refusing the whole request for it would fail a
    search; the caller keeps its indexes.
    """
    violations = FieldViolations()
    if not request.query.strip():
        violations.add("query", "must contain a non-blank query")
    if not request.documents:
        violations.add("documents", "at least one document is required")
    elif len(request.documents) > MAX_RERANK_DOCUMENTS:
        violations.add(
            "documents",
            f"at most {MAX_RERANK_DOCUMENTS} documents per request, got {len(request.documents)}",
        )
    violations.raise_if_any()


def _too_long(max_tokens: int, request_id: str) -> str:
    where = f" (request_id {request_id!r})" if request_id else ""
    return f"longer than the model's limit of {max_tokens} tokens (strict mode){where}"


def strict_check(field: str, description: str) -> Callable[[Sequence[Encoded]], None]:
    """Refuses inputs the model would cut (strict mode), naming `field[i]` for each."""

    def check(encoded: Sequence[Encoded]) -> None:
        violations = FieldViolations()
        for index, row in enumerate(encoded):
            if row.truncated:
                violations.add(f"{field}[{index}]", description)
        violations.raise_if_any()

    return check


def _deadline(context: Context) -> float | None:
    """The caller's deadline on the batcher's clock (time.monotonic)."""
    left = context.time_remaining()
    return None if left is None else time.monotonic() + float(left)


def _embeddings(
    result: Embeddings, dimensions: int, normalize: bool
) -> list[embedder_pb2.Embedding]:
    vectors = truncate_dimensions(result.vectors, dimensions, normalize)
    return [
        embedder_pb2.Embedding(values=values, token_count=count, truncated=truncated)
        for values, count, truncated in zip(
            vectors.tolist(), result.token_counts, result.truncated, strict=True
        )
    ]


EmbedLike = embedder_pb2.EmbedRequest | embedder_pb2.EmbedStreamRequest


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
        self, request: EmbedLike, deadline: float | None, request_id: str = ""
    ) -> list[embedder_pb2.Embedding]:
        validate(request.texts, request.kind, request_id)
        model, batcher = self._loaded()
        validate_options(model, request.kind, request.dimensions, request.task, request_id)
        result = await batcher.embed(
            request.texts,
            query=request.kind == embedder_pb2.INPUT_KIND_QUERY,
            deadline=deadline,
            task=request.task,
            check=strict_check("texts", _too_long(model.max_tokens, request_id))
            if request.strict
            else None,
        )
        return _embeddings(result, request.dimensions, model.normalize)

    async def Embed(
        self, request: embedder_pb2.EmbedRequest, context: Context
    ) -> embedder_pb2.EmbedResponse:
        return embedder_pb2.EmbedResponse(embeddings=await self._embed(request, _deadline(context)))

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
            embeddings = await self._embed(request, deadline, request.request_id)
            return embedder_pb2.EmbedStreamResponse(
                embeddings=embeddings, request_id=request.request_id
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

    async def CountTokens(
        self, request: embedder_pb2.CountTokensRequest, context: Context
    ) -> embedder_pb2.CountTokensResponse:
        validate(request.texts, request.kind)
        model, _ = self._loaded()
        validate_options(model, request.kind, 0, request.task)
        query = request.kind == embedder_pb2.INPUT_KIND_QUERY
        counts = await asyncio.to_thread(
            lambda: model.count_tokens(request.texts, query=query, task=request.task)
        )
        return embedder_pb2.CountTokensResponse(token_counts=counts, max_tokens=model.max_tokens)

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
            pooling=model.pooling,
            min_dimensions=model.min_dimensions,
            normalized=model.normalize,
            query_prompt=model.spec.prompt(query=True)[0],
            document_prompt=model.spec.prompt(query=False)[0],
            padding_side=model.padding_side,
        )

    async def Rerank(
        self, request: embedder_pb2.RerankRequest, context: Context
    ) -> embedder_pb2.RerankResponse:
        validate_rerank(request)
        _, batcher = self._loaded()
        reranker = batcher.reranker
        check = None
        if request.strict and reranker is not None:
            check = strict_check(
                "documents",
                f"with the query, longer than the reranker's limit of {reranker.max_tokens} "
                "tokens (strict mode)",
            )
        try:
            # FAILED_PRECONDITION from the batcher when no reranker is configured.
            result = await batcher.rerank(
                request.query, request.documents, deadline=_deadline(context), check=check
            )
        except QueryTooLong as exc:
            raise invalid_argument({"query": str(exc)}) from exc
        assert reranker is not None  # rerank() refuses without one
        return embedder_pb2.RerankResponse(
            scores=result.scores.tolist(),
            model=reranker.name,
            truncated=[index for index, cut in enumerate(result.truncated) if cut],
        )
