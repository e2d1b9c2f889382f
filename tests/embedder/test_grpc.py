"""EmbedderService over gRPC, served in-process on a free port."""

from __future__ import annotations

import asyncio
import threading

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from semantik.internal.v1 import embedder_pb2
from services.embedder.model import EmbeddingModel, Vectors
from tests.embedder.conftest import (
    SENTENCES,
    Gate,
    Running,
    config,
    cosine_rows,
    forward_started,
    serving,
)

QUERY = embedder_pb2.INPUT_KIND_QUERY


def vectors_of(embeddings: list[embedder_pb2.Embedding]) -> Vectors:
    return np.array([list(e.values) for e in embeddings], dtype=np.float32)


def error_details(error: grpc.aio.AioRpcError) -> list[object]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    details: list[object] = []
    for any_detail in status.details:
        for cls in (error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if any_detail.Is(cls.DESCRIPTOR):
                message = cls()
                any_detail.Unpack(message)
                details.append(message)
    return details


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    (bad,) = error_details(error)
    assert isinstance(bad, error_details_pb2.BadRequest)
    return [v.field for v in bad.field_violations]


async def test_embed_equals_sentence_transformers(
    embedder: Running, reference_vectors: Vectors
) -> None:
    answer = await embedder.stub.Embed(embedder_pb2.EmbedRequest(texts=SENTENCES), timeout=30)
    assert cosine_rows(vectors_of(answer.embeddings), reference_vectors).min() >= 0.99999
    assert [e.truncated for e in answer.embeddings] == [False] * (len(SENTENCES) - 1) + [True]
    assert answer.embeddings[-1].token_count == 256
    assert answer.embeddings[0].token_count == 9  # [CLS] how do i reset my password ? [SEP]


async def test_info(embedder: Running) -> None:
    info = await embedder.stub.Info(embedder_pb2.InfoRequest(), timeout=5)
    assert info.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert (info.dimensions, info.max_tokens, info.precision, info.device) == (
        384,
        256,
        "float32",
        "cpu",
    )
    assert info.memory_bytes > 80_000_000


async def test_tokenize_offsets(embedder: Running) -> None:
    text = "Naïve cafés serve crème brûlée."
    answer = await embedder.stub.Tokenize(embedder_pb2.TokenizeRequest(texts=[text]), timeout=5)
    (tokens,) = answer.tokenizations
    pieces = [text[s:e] for s, e in zip(tokens.starts, tokens.ends, strict=True)]
    # Offsets index the original text, accents and case included.
    assert pieces == ["Naïve", "cafés", "serve", "cr", "ème", "br", "ûlé", "e", "."]


@pytest.mark.parametrize(
    ("texts", "field"),
    [([], "texts"), (["fine", "", "fine"], "texts[1]"), (["x"] * 2049, "texts")],
)
async def test_bad_input_is_invalid_argument(
    embedder: Running, texts: list[str], field: str
) -> None:
    for call in (
        embedder.stub.Embed(embedder_pb2.EmbedRequest(texts=texts), timeout=5),
        embedder.stub.Tokenize(embedder_pb2.TokenizeRequest(texts=texts), timeout=5),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error.value) == [field]


async def test_embed_streams_keep_request_order(embedder: Running, model: EmbeddingModel) -> None:
    # The first request of each stream is long documents and the rest are short
    # queries, which the batcher runs first: only the handler keeps the order.
    def requests(stream: int) -> list[embedder_pb2.EmbedStreamRequest]:
        first = embedder_pb2.EmbedStreamRequest(texts=SENTENCES[-1:] * 8, request_id=f"{stream}-0")
        rest = [
            embedder_pb2.EmbedStreamRequest(
                texts=[SENTENCES[(stream + i) % 12]], kind=QUERY, request_id=f"{stream}-{i}"
            )
            for i in range(1, 8)
        ]
        return [first, *rest]

    async def run(stream: int) -> None:
        sent = requests(stream)
        call = embedder.stub.EmbedStream(iter(sent), timeout=60)
        answers = [answer async for answer in call]
        assert [a.request_id for a in answers] == [r.request_id for r in sent]
        for request, answer in zip(sent, answers, strict=True):
            expected = model.embed(list(request.texts)).vectors
            assert cosine_rows(vectors_of(answer.embeddings), expected).min() >= 0.99999

    await asyncio.gather(*(run(stream) for stream in range(4)))


async def test_bad_stream_request_ends_the_stream_after_earlier_answers(
    embedder: Running,
) -> None:
    sent = [
        embedder_pb2.EmbedStreamRequest(texts=["good"], request_id="a"),
        embedder_pb2.EmbedStreamRequest(texts=["also good"], request_id="b"),
        embedder_pb2.EmbedStreamRequest(texts=["bad", ""], request_id="c"),
        embedder_pb2.EmbedStreamRequest(texts=["never answered"], request_id="d"),
    ]
    call = embedder.stub.EmbedStream(iter(sent), timeout=30)
    received: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for answer in call:
            received.append(answer.request_id)
    assert received == ["a", "b"]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error.value) == ["texts[1]"]
    assert "'c'" in (error.value.details() or "")


async def test_full_queue_is_resource_exhausted(model: EmbeddingModel, gated_forward: Gate) -> None:
    async with serving(lambda _: model, config(max_queued_texts=2)) as running:
        gated_forward.open.set()  # let the warm-up through
        await running.wait_serving()
        gated_forward.open.clear()
        gated_forward.entered.clear()

        held = asyncio.ensure_future(
            running.stub.Embed(embedder_pb2.EmbedRequest(texts=SENTENCES[:2]), timeout=30)
        )
        await forward_started(gated_forward)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await running.stub.Embed(embedder_pb2.EmbedRequest(texts=["one more"]), timeout=5)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        (retry,) = error_details(error.value)
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.ToTimedelta().total_seconds() > 0

        gated_forward.open.set()
        assert len((await held).embeddings) == 2


async def test_not_serving_until_loaded_and_warmed(model: EmbeddingModel) -> None:
    loaded = threading.Event()

    def slow_load(_: object) -> EmbeddingModel:
        if not loaded.wait(timeout=30):
            raise TimeoutError("the test never let the model load")
        return model

    async with serving(slow_load) as running:
        await asyncio.sleep(0.2)  # several readiness rounds
        assert await running.status() == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await running.stub.Embed(embedder_pb2.EmbedRequest(texts=["early"]), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE

        loaded.set()
        await running.wait_serving(timeout_s=30)
        answer = await running.stub.Embed(embedder_pb2.EmbedRequest(texts=["ready"]), timeout=5)
        assert len(answer.embeddings[0].values) == 384


async def test_strict_mode_rejects_over_limit_texts(embedder: Running) -> None:
    texts = [SENTENCES[0], SENTENCES[-1], SENTENCES[1]]
    relaxed = await embedder.stub.Embed(embedder_pb2.EmbedRequest(texts=texts), timeout=30)
    assert [e.truncated for e in relaxed.embeddings] == [False, True, False]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await embedder.stub.Embed(embedder_pb2.EmbedRequest(texts=texts, strict=True), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error.value) == ["texts[1]"]
    assert "256 tokens" in (error.value.details() or "")
    fine = await embedder.stub.Embed(
        embedder_pb2.EmbedRequest(texts=SENTENCES[:3], strict=True), timeout=30
    )
    assert len(fine.embeddings) == 3

    stream = embedder.stub.EmbedStream(
        iter(
            [
                embedder_pb2.EmbedStreamRequest(texts=texts[:1], strict=True, request_id="a"),
                embedder_pb2.EmbedStreamRequest(texts=texts, strict=True, request_id="b"),
            ]
        ),
        timeout=30,
    )
    received: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for answer in stream:
            received.append(answer.request_id)
    assert received == ["a"]
    assert violated_fields(error.value) == ["texts[1]"]
    assert "'b'" in (error.value.details() or "")


async def test_count_tokens_matches_embed_and_ignores_the_limit(embedder: Running) -> None:
    texts = [SENTENCES[0], SENTENCES[-1]]
    counted = await embedder.stub.CountTokens(
        embedder_pb2.CountTokensRequest(texts=texts), timeout=5
    )
    assert counted.max_tokens == 256
    assert counted.token_counts[0] == 9
    assert counted.token_counts[1] > 256


async def test_options_minilm_cannot_honour_are_invalid(embedder: Running) -> None:
    info = await embedder.stub.Info(embedder_pb2.InfoRequest(), timeout=5)
    assert (info.pooling, info.min_dimensions, info.normalized, info.padding_side) == (
        "mean",
        0,
        True,
        "right",
    )
    assert info.query_prompt == info.document_prompt == ""
    native = await embedder.stub.Embed(
        embedder_pb2.EmbedRequest(texts=["x"], dimensions=384), timeout=5
    )
    assert len(native.embeddings[0].values) == 384
    for request, field in (
        (embedder_pb2.EmbedRequest(texts=["x"], dimensions=128), "dimensions"),
        (embedder_pb2.EmbedRequest(texts=["x"], kind=QUERY, task="find"), "task"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await embedder.stub.Embed(request, timeout=5)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error.value) == [field]


async def test_a_cancelled_stream_costs_no_more_forward_passes(
    model: EmbeddingModel, gated_forward: Gate
) -> None:
    async with serving(lambda _: model) as running:
        gated_forward.open.set()  # let the warm-up through
        await running.wait_serving()
        gated_forward.open.clear()
        gated_forward.entered.clear()
        gated_forward.batches.clear()

        sent = [
            embedder_pb2.EmbedStreamRequest(texts=[f"stream text {i}"], request_id=str(i))
            for i in range(6)
        ]
        call = running.stub.EmbedStream(iter(sent), timeout=30)
        reader = asyncio.ensure_future(call.read())
        await forward_started(gated_forward)  # the first request holds the model
        await asyncio.sleep(0.2)  # the other five are queued behind it
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        await asyncio.sleep(0.2)  # the handler sees the cancellation
        gated_forward.open.set()
        # A later request runs next: nothing of the cancelled stream ran before it.
        after = await running.stub.Embed(embedder_pb2.EmbedRequest(texts=["after"]), timeout=10)
        assert len(after.embeddings) == 1
        seen = [ids for batch in gated_forward.batches for ids in batch]
        assert seen == [
            model.encode(["stream text 0"])[0].ids,
            model.encode(["after"])[0].ids,
        ]
