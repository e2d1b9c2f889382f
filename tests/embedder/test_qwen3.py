"""Qwen3-Embedding's code paths on a small random Qwen3 model: the query
instruction, left padding, last-token pooling, Matryoshka truncation, the
registry, and the model found offline in a Hugging Face cache."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import grpc
import huggingface_hub.constants
import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from semantik.internal.v1 import embedder_pb2
from services.embedder.model import EmbeddingModel, ModelError, Vectors, _max_tokens, load_model
from services.embedder.registry import KNOWN_MODELS, QWEN3_TASK, ModelSpec, spec_for
from tests.embedder import tiny_qwen3
from tests.embedder.conftest import SENTENCES, Running, config, cosine_rows, serving
from tests.embedder.test_grpc import vectors_of, violated_fields

QUERY = embedder_pb2.INPUT_KIND_QUERY
REGISTERED = "semantik-test/tiny-qwen3"
TEXTS = SENTENCES[:-1]  # the long one is past the tiny model's 64 tokens
OTHER_TASK = "Given a question, retrieve passages about science"


@pytest.fixture(scope="session")
def qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen3.build(tmp_path_factory.mktemp("tiny-qwen3"), SENTENCES)


@pytest.fixture(scope="session")
def qwen3(qwen3_dir: Path) -> EmbeddingModel:
    """An unknown local directory: everything comes from its sentence-transformers files."""
    return load_model(config(model=str(qwen3_dir)))


@pytest.fixture(scope="session")
def qwen3_reference(qwen3_dir: Path) -> SentenceTransformer:
    return SentenceTransformer(str(qwen3_dir), device="cpu")


def _registered_spec() -> ModelSpec:
    # Qwen3-Embedding-0.6B's entry at the tiny model's size.
    return dataclasses.replace(
        KNOWN_MODELS["Qwen/Qwen3-Embedding-0.6B"],
        dimensions=tiny_qwen3.HIDDEN,
        max_tokens=tiny_qwen3.MAX_TOKENS,
        min_dimensions=8,
    )


@pytest.fixture
def hf_cache(qwen3_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny model as REGISTERED in a Hugging Face cache, with a registry entry."""
    revision = "0" * 40
    repo = tmp_path / "hub" / f"models--{REGISTERED.replace('/', '--')}"
    shutil.copytree(qwen3_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setitem(KNOWN_MODELS, REGISTERED, _registered_spec())
    return tmp_path / "hub"


def test_sentence_transformers_files_give_the_qwen3_settings(qwen3: EmbeddingModel) -> None:
    assert (qwen3.pooling, qwen3.padding_side, qwen3.normalize) == ("last", "left", True)
    assert (qwen3.dimensions, qwen3.max_tokens) == (tiny_qwen3.HIDDEN, tiny_qwen3.MAX_TOKENS)
    assert qwen3.spec.prompt(query=True) == (tiny_qwen3.QUERY_PROMPT, "")
    assert qwen3.spec.prompt(query=False) == ("", "")
    # The trace was checked on left-padded batches and kept.
    assert qwen3.compiled
    probe = qwen3._probe(3, 10)["attention_mask"]
    assert probe[:, -1].all() and not probe[1:, 0].any()


def test_documents_and_queries_equal_sentence_transformers(
    qwen3: EmbeddingModel, qwen3_reference: SentenceTransformer
) -> None:
    documents: Vectors = qwen3_reference.encode(TEXTS, normalize_embeddings=True)
    queries: Vectors = qwen3_reference.encode(TEXTS, prompt_name="query", normalize_embeddings=True)
    # A random model still tells texts apart, so equality below means something.
    similarities = documents @ documents.T - 2 * np.eye(len(TEXTS))
    assert similarities.max() < 0.9
    assert cosine_rows(qwen3.embed(TEXTS).vectors, documents).min() >= 0.99999
    assert cosine_rows(qwen3.embed(TEXTS, query=True).vectors, queries).min() >= 0.99999
    assert cosine_rows(qwen3.embed(TEXTS, query=True).vectors, documents).max() < 0.99


def test_left_padded_batches_pool_each_rows_last_token(qwen3: EmbeddingModel) -> None:
    encoded = qwen3.encode(TEXTS)
    eos = encoded[0].ids[-1]
    assert all(e.ids[-1] == eos for e in encoded)  # every text ends with <|endoftext|>
    assert len({len(e.ids) for e in encoded}) > 5  # so the batch below is padded
    alone = np.stack([qwen3.forward([e.ids])[0] for e in encoded])
    together = qwen3.forward([e.ids for e in encoded])
    assert cosine_rows(alone, together).min() >= 0.99999


def test_eager_equals_the_trace(qwen3_dir: Path, qwen3: EmbeddingModel) -> None:
    eager = load_model(config(model=str(qwen3_dir), torchscript=False))
    assert not eager.compiled
    both = cosine_rows(
        eager.embed(TEXTS, query=True).vectors, qwen3.embed(TEXTS, query=True).vectors
    )
    assert both.min() >= 0.99999


def test_the_position_table_caps_the_limit() -> None:
    spec = KNOWN_MODELS["Qwen/Qwen3-Embedding-0.6B"]
    assert _max_tokens(spec, SimpleNamespace(max_position_embeddings=256), 10**30) == 256
    assert _max_tokens(spec, SimpleNamespace(max_position_embeddings=40960), 10**30) == 32768


def test_truncation_keeps_the_final_token(qwen3: EmbeddingModel) -> None:
    (long,) = qwen3.encode([SENTENCES[-1]])
    assert long.truncated and len(long.ids) == tiny_qwen3.MAX_TOKENS
    assert long.ids[-1] == qwen3.encode(["x"])[0].ids[-1]
    assert qwen3.count_tokens([SENTENCES[-1]])[0] > tiny_qwen3.MAX_TOKENS


def test_registry_entry_from_the_hugging_face_cache(
    hf_cache: Path, qwen3: EmbeddingModel, qwen3_reference: SentenceTransformer
) -> None:
    registered = load_model(config(model=REGISTERED))
    assert registered.spec == _registered_spec()
    assert (registered.padding_side, registered.min_dimensions) == ("left", 8)
    assert registered.max_tokens == tiny_qwen3.MAX_TOKENS
    default = registered.embed(TEXTS, query=True).vectors
    assert cosine_rows(default, qwen3.embed(TEXTS, query=True).vectors).min() >= 0.99999

    # Another task changes the instruction, as sentence-transformers with that prompt.
    other = registered.embed(TEXTS, query=True, task=OTHER_TASK).vectors
    expected = qwen3_reference.encode(
        TEXTS, prompt=f"Instruct: {OTHER_TASK}\nQuery:", normalize_embeddings=True
    )
    assert cosine_rows(other, expected).min() >= 0.99999
    assert cosine_rows(other, default).max() < 0.999


def test_registry_dimensions_must_match_the_files(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KNOWN_MODELS, REGISTERED, KNOWN_MODELS["Qwen/Qwen3-Embedding-0.6B"])
    with pytest.raises(ModelError, match="has 64 dimensions, its registry entry 1024"):
        load_model(config(model=REGISTERED))


def test_qwen3_registry_entry() -> None:
    spec = spec_for("Qwen/Qwen3-Embedding-0.6B", Path("/nonexistent"))
    assert (spec.pooling, spec.padding_side, spec.dimensions, spec.min_dimensions) == (
        "last",
        "left",
        1024,
        32,
    )
    assert spec.prompt(query=True) == (f"Instruct: {QWEN3_TASK}\nQuery:", "")
    assert spec.prompt(query=True, task="Find code") == ("Instruct: Find code\nQuery:", "")
    assert spec.prompt(query=False) == ("", "")


@pytest.fixture
async def registered_server(hf_cache: Path) -> AsyncIterator[Running]:
    model = load_model(config(model=REGISTERED))
    async with serving(lambda _: model) as running:
        await running.wait_serving()
        yield running


async def test_matryoshka_dimensions_over_grpc(registered_server: Running) -> None:
    stub = registered_server.stub
    native = await stub.Embed(embedder_pb2.EmbedRequest(texts=TEXTS, kind=QUERY), timeout=30)
    cut = await stub.Embed(
        embedder_pb2.EmbedRequest(texts=TEXTS, kind=QUERY, dimensions=16), timeout=30
    )
    full, short = vectors_of(native.embeddings), vectors_of(cut.embeddings)
    assert short.shape == (len(TEXTS), 16)
    assert np.allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)
    prefix = full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True)
    assert cosine_rows(short, prefix).min() >= 0.99999

    same = await stub.Embed(embedder_pb2.EmbedRequest(texts=TEXTS[:1], dimensions=64), timeout=30)
    assert len(same.embeddings[0].values) == 64
    for dimensions in (4, 65, -1):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Embed(
                embedder_pb2.EmbedRequest(texts=TEXTS[:1], dimensions=dimensions), timeout=30
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error.value) == ["dimensions"]


async def test_info_and_task_over_grpc(registered_server: Running) -> None:
    stub = registered_server.stub
    info = await stub.Info(embedder_pb2.InfoRequest(), timeout=5)
    assert (info.model, info.dimensions, info.pooling, info.padding_side) == (
        REGISTERED,
        64,
        "last",
        "left",
    )
    assert (info.min_dimensions, info.normalized) == (8, True)
    assert info.query_prompt == f"Instruct: {QWEN3_TASK}\nQuery:"
    assert info.document_prompt == ""

    default, other = [
        await stub.Embed(
            embedder_pb2.EmbedRequest(texts=TEXTS[:2], kind=QUERY, task=task), timeout=30
        )
        for task in ("", OTHER_TASK)
    ]
    assert cosine_rows(vectors_of(default.embeddings), vectors_of(other.embeddings)).max() < 0.999
    # The instruction counts: a query takes more tokens than the same document.
    counts = [
        await stub.CountTokens(
            embedder_pb2.CountTokensRequest(texts=TEXTS[:1], kind=kind), timeout=5
        )
        for kind in (embedder_pb2.INPUT_KIND_DOCUMENT, QUERY)
    ]
    assert counts[1].token_counts[0] > counts[0].token_counts[0] + 10
    assert counts[0].token_counts[0] == default.embeddings[0].token_count - (
        counts[1].token_counts[0] - counts[0].token_counts[0]
    )
    assert counts[0].max_tokens == tiny_qwen3.MAX_TOKENS

    # A task on a document is refused: documents are embedded bare.
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Embed(embedder_pb2.EmbedRequest(texts=TEXTS[:1], task=OTHER_TASK), timeout=5)
    assert violated_fields(error.value) == ["task"]
