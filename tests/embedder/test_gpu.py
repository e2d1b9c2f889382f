"""The precisions and the out-of-memory split on a real CUDA device.

Skipped without CUDA; run them on a GPU machine with
`.venv/bin/pytest tests/embedder/test_gpu.py -m gpu` (a CUDA build of torch,
bitsandbytes and accelerate for int8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib.util import find_spec

import numpy as np
import pytest
import torch

from services.embedder.batcher import Batcher
from services.embedder.model import EmbeddingModel, Vectors, load_model
from tests.embedder.conftest import SENTENCES, config, cosine_rows

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _cuda(precision: str) -> EmbeddingModel:
    return load_model(config(device="cuda", quantization=precision))


@pytest.fixture(scope="module")
def float32_cuda() -> EmbeddingModel:
    return _cuda("float32")


@pytest.mark.parametrize(("precision", "least"), [("float16", 0.9999), ("bfloat16", 0.999)])
def test_half_precisions_on_cuda(
    precision: str, least: float, float32_cuda: EmbeddingModel, reference_vectors: Vectors
) -> None:
    half = _cuda(precision)
    assert (half.precision, half.device.type) == (precision, "cuda")
    assert half.memory_bytes < float32_cuda.memory_bytes * 0.6
    assert cosine_rows(half.embed(SENTENCES).vectors, reference_vectors).min() >= least
    assert cosine_rows(float32_cuda.embed(SENTENCES).vectors, reference_vectors).min() >= 0.99999


@pytest.mark.skipif(
    find_spec("bitsandbytes") is None or find_spec("accelerate") is None,
    reason="int8 on CUDA needs bitsandbytes and accelerate",
)
def test_int8_llm_int8_on_cuda(float32_cuda: EmbeddingModel, reference_vectors: Vectors) -> None:
    import bitsandbytes  # type: ignore[import-untyped]  # noqa: PLC0415

    int8 = _cuda("int8")
    assert int8.precision == "int8"
    linear8 = bitsandbytes.nn.Linear8bitLt  # type: ignore[attr-defined]
    assert any(isinstance(m, linear8) for m in int8._model.modules())
    assert int8.memory_bytes < float32_cuda.memory_bytes * 0.85
    assert cosine_rows(int8.embed(SENTENCES).vectors, reference_vectors).min() >= 0.98


@pytest.fixture
def small_gpu_memory(float32_cuda: EmbeddingModel) -> Iterator[int]:
    """Caps this process's CUDA memory just above what the model holds."""
    device = float32_cuda.device
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(device).total_memory
    cap = torch.cuda.memory_allocated(device) + 256 * 2**20
    torch.cuda.set_per_process_memory_fraction(cap / total, device)
    yield cap
    torch.cuda.set_per_process_memory_fraction(1.0, device)
    torch.cuda.empty_cache()


async def test_real_out_of_memory_splits_the_batch(
    float32_cuda: EmbeddingModel, small_gpu_memory: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [SENTENCES[-1]] * 512  # 512 x 256 tokens: attention alone needs gigabytes
    one = float32_cuda.embed(texts[:1]).vectors
    sizes: list[int] = []
    inner = float32_cuda.forward

    def counting(batch: list[list[int]]) -> Vectors:
        sizes.append(len(batch))
        return inner(batch)

    monkeypatch.setattr(float32_cuda, "forward", counting)
    batcher = Batcher(float32_cuda, max_batch_tokens=512 * 256, max_queued_texts=1024)
    batcher.start()
    try:
        result = await asyncio.wait_for(batcher.embed(texts), timeout=120)
    finally:
        await batcher.close()
    assert sizes[0] == 512 and len(sizes) > 2, sizes
    assert batcher.max_batch_tokens < 512 * 256
    assert cosine_rows(result.vectors, np.repeat(one, 512, axis=0)).min() >= 0.9999
