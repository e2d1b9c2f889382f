"""The batcher on the real model, with its forward passes held by a gate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import grpc
import numpy as np
import pytest
import torch
from google.rpc import error_details_pb2

from servicekit.errors import ServiceError
from services.embedder.batcher import Batcher, _Item, _Request, plan_batches
from services.embedder.model import EmbeddingModel, Embeddings, Encoded, Vectors
from tests.embedder.conftest import SENTENCES, Gate, cosine_rows, forward_started


@pytest.fixture
async def batcher(model: EmbeddingModel) -> AsyncIterator[Batcher]:
    running = Batcher(model, max_batch_tokens=512, max_queued_texts=64)
    running.start()
    yield running
    await running.close()


def _items(lengths: list[int]) -> list[_Item]:
    loop = asyncio.get_running_loop()
    request = _Request([Encoded([0] * n, False) for n in lengths], loop.create_future(), None)
    return [_Item(request, index, n) for index, n in enumerate(lengths)]


async def test_plan_batches_sorts_by_length_within_the_budget() -> None:
    lengths = [5, 200, 7, 180, 6, 100, 8, 120]
    batches = plan_batches(_items(lengths), max_batch_tokens=400)
    flat = [item.length for batch in batches for item in batch]
    assert flat == sorted(lengths, reverse=True)
    for batch in batches:
        assert len(batch) * batch[0].length <= 400
    assert [len(batch) for batch in batches] == [2, 3, 3]


async def test_concurrent_requests_get_their_own_vectors(
    batcher: Batcher, model: EmbeddingModel
) -> None:
    requests = [SENTENCES[i : i + 3] for i in range(0, len(SENTENCES), 3)]
    results = await asyncio.gather(*(batcher.embed(texts) for texts in requests))
    for texts, result in zip(requests, results, strict=True):
        assert cosine_rows(result.vectors, model.embed(texts).vectors).min() >= 0.99999
    assert batcher.queued_texts == 0


async def test_cancelled_and_expired_requests_skip_the_forward_pass(
    batcher: Batcher, gated_forward: Gate, model: EmbeddingModel
) -> None:
    first = asyncio.create_task(batcher.embed(["the first request holds the model"]))
    await forward_started(gated_forward)
    expired = asyncio.create_task(
        batcher.embed(["expires while queued"], deadline=time.monotonic() + 0.05)
    )
    cancelled = asyncio.create_task(batcher.embed(["the caller gives up"]))
    kept = asyncio.create_task(batcher.embed(["this one is still wanted"]))
    await asyncio.sleep(0.2)
    cancelled.cancel()
    gated_forward.open.set()

    await first
    assert (await kept).vectors.shape == (1, 384)
    with pytest.raises(ServiceError) as error:
        await expired
    assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    seen = [ids for batch in gated_forward.batches for ids in batch]
    assert seen == [
        model.encode(["the first request holds the model"])[0].ids,
        model.encode(["this one is still wanted"])[0].ids,
    ]


async def test_queries_run_before_queued_documents(
    batcher: Batcher, gated_forward: Gate, model: EmbeddingModel
) -> None:
    running = asyncio.create_task(batcher.embed(SENTENCES[-1:]))
    await forward_started(gated_forward)
    # Several 512-token batches' worth of documents, then one query.
    documents = asyncio.create_task(batcher.embed(SENTENCES[-1:] * 6))
    await asyncio.sleep(0.1)
    query = asyncio.create_task(batcher.embed(["how do I reset my password"], query=True))
    await asyncio.sleep(0.1)
    gated_forward.open.set()
    await asyncio.gather(running, documents, query)

    query_ids = model.encode(["how do I reset my password"])[0].ids
    assert gated_forward.batches[1] == [query_ids]
    assert len(gated_forward.batches) == 2 + 3  # six long texts, two per 512 tokens


async def test_full_queue_is_resource_exhausted_with_retry_delay(
    model: EmbeddingModel, gated_forward: Gate
) -> None:
    small = Batcher(model, max_batch_tokens=512, max_queued_texts=3)
    small.start()
    try:
        # An empty queue admits even a request over the bound.
        first = asyncio.create_task(small.embed(SENTENCES[:4]))
        await forward_started(gated_forward)
        with pytest.raises(ServiceError) as error:
            await small.embed(["one more"])
        assert error.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        (retry,) = error.value.details
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.ToTimedelta().total_seconds() > 0
        gated_forward.open.set()
        assert (await first).vectors.shape == (4, 384)
        # Once drained, the queue admits again.
        assert (await small.embed(["one more"])).vectors.shape == (1, 384)
        assert np.isfinite((await small.embed(["again"])).vectors).all()
    finally:
        await small.close()


class OutOfMemoryAbove:
    """The model's forward pass, failing like CUDA's allocator past `rows` texts."""

    def __init__(self, model: EmbeddingModel, rows: int, tokens: int = 10**9) -> None:
        self.inner = model.forward
        self.rows = rows
        self.tokens = tokens
        self.sizes: list[int] = []

    def __call__(self, batch: Sequence[Sequence[int]]) -> Vectors:
        self.sizes.append(len(batch))
        if len(batch) > self.rows or max(len(ids) for ids in batch) > self.tokens:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(batch)


async def test_out_of_memory_splits_the_batch_and_retries(
    model: EmbeddingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = SENTENCES[:10]
    expected = model.embed(texts).vectors
    fake = OutOfMemoryAbove(model, rows=3)
    monkeypatch.setattr(model, "forward", fake)
    oom = Batcher(model, max_batch_tokens=16384, max_queued_texts=64)
    oom.start()
    try:
        result = await oom.embed(texts)
        assert fake.sizes[0] == 10  # one batch planned, then halved until it fits
        assert max(fake.sizes[1:]) <= 5 and 3 in fake.sizes
        assert cosine_rows(result.vectors, expected).min() >= 0.99999
        # Later batches are planned under the lowered budget.
        longest = max(len(e.ids) for e in model.encode(texts))
        assert oom.max_batch_tokens < 10 * longest
        fake.sizes.clear()
        await oom.embed(texts)
        assert fake.sizes[0] < 10
    finally:
        await oom.close()


async def test_a_text_that_alone_does_not_fit_fails_alone(
    model: EmbeddingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = SENTENCES[-1]
    fake = OutOfMemoryAbove(model, rows=100, tokens=200)
    monkeypatch.setattr(model, "forward", fake)
    oom = Batcher(model, max_batch_tokens=16384, max_queued_texts=64)
    oom.start()
    try:
        # Both requests land in one batch (the worker is held by the first).
        results = await asyncio.gather(
            oom.embed([long]), oom.embed(SENTENCES[:2]), return_exceptions=True
        )
        error, fine = results
        assert isinstance(error, ServiceError)
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "does not fit" in error.message
        assert isinstance(fine, Embeddings) and fine.vectors.shape == (2, 384)
    finally:
        await oom.close()


async def test_other_forward_errors_are_not_split(
    model: EmbeddingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken(batch: Sequence[Sequence[int]]) -> Vectors:
        calls.append(len(batch))
        raise RuntimeError("a bug, not memory")

    monkeypatch.setattr(model, "forward", broken)
    failing = Batcher(model, max_batch_tokens=16384, max_queued_texts=64)
    failing.start()
    try:
        with pytest.raises(RuntimeError, match="a bug"):
            await failing.embed(SENTENCES[:4])
        assert calls == [4]
    finally:
        await failing.close()


async def test_query_prompt_and_strict_check_reach_the_tokenizer(
    batcher: Batcher, model: EmbeddingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[list[str], bool, str]] = []
    inner = model.encode

    def encode(texts: Sequence[str], *, query: bool = False, task: str = "") -> list[Encoded]:
        seen.append((list(texts), query, task))
        return inner(texts, query=query, task=task)

    monkeypatch.setattr(model, "encode", encode)
    await batcher.embed(["q"], query=True, task="t")
    assert seen == [(["q"], True, "t")]

    def refuse(encoded: Sequence[Encoded]) -> None:
        raise ValueError(f"refused {len(encoded)}")

    with pytest.raises(ValueError, match="refused 2"):
        await batcher.embed(["a", "b"], check=refuse)
    assert batcher.queued_texts == 0
