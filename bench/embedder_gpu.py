"""`make bench-embedder-gpu`: a Qwen3-Embedding-0.6B-shaped model's throughput on one GPU.

Needs CUDA: without it, says so and exits 2. First measures the GPU's bf16
matmul peak with torch (square matmuls, the best of a few sizes), then runs
forward passes of a randomly initialised model with Qwen3-Embedding-0.6B's
shape (28 layers, hidden 1024, 16 heads, 8 KV heads, intermediate 3072,
vocabulary 151669) in bfloat16, with last-token pooling and L2
normalisation as the embedding model does, and reports tokens/s and the
fraction of the measured peak. Random weights run exactly the same
arithmetic as trained ones, so throughput is that of the real model.

FLOPs per token: 2 x non-embedding parameters (every matmul) + 4 x layers x
sequence length x query width (attention scores and their weighted sum,
the full square, as MFU is usually counted): about 0.91 GFLOP at 128 tokens.
Prints a table and writes bench/results/embedder-gpu.json.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import Qwen3Config, Qwen3Model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "embedder-gpu.json"
SEQUENCE = 128  # tokens per text
BATCHES = (32, 128, 512)  # texts per forward pass
MATMUL_SIZES = (4096, 8192, 16384)


def _time(step: Callable[[], object], *, warmup: int, seconds: float) -> tuple[float, int]:
    """Seconds per call of `step` on the GPU, timed over about `seconds` after a warm-up."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    calls = 0
    begin = time.perf_counter()
    while True:
        step()
        calls += 1
        if calls % 5 == 0:
            torch.cuda.synchronize()
            elapsed = time.perf_counter() - begin
            if elapsed >= seconds:
                return elapsed / calls, calls


def matmul_peak() -> dict[str, Any]:
    """bf16 TFLOP/s of `a @ b` for square matrices; the best size is the peak."""
    by_size: dict[str, float] = {}
    for n in MATMUL_SIZES:
        a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        out = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)

        def step(a: torch.Tensor = a, b: torch.Tensor = b, out: torch.Tensor = out) -> None:
            torch.mm(a, b, out=out)

        per_call, _ = _time(step, warmup=3, seconds=2)
        by_size[str(n)] = round(2 * n**3 / per_call / 1e12, 1)
        del a, b, out
    torch.cuda.empty_cache()
    return {"tflops_by_size": by_size, "tflops": max(by_size.values())}


def qwen3_embedding_shaped() -> tuple[Qwen3Model, Qwen3Config]:
    config = Qwen3Config(
        vocab_size=151669,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        use_cache=False,
    )
    torch.manual_seed(0)
    model = Qwen3Model(config)
    # Through nn.Module: transformers' typed wrappers of `to` and `eval` confuse mypy.
    torch.nn.Module.to(model, device="cuda", dtype=torch.bfloat16)
    torch.nn.Module.train(model, False)
    return model, config


def flops_per_token(model: Qwen3Model, config: Qwen3Config, sequence: int) -> tuple[float, int]:
    embedding = sum(p.numel() for p in model.get_input_embeddings().parameters())
    dense = sum(p.numel() for p in model.parameters()) - embedding
    width = config.num_attention_heads * config.head_dim
    attention = 4 * config.num_hidden_layers * sequence * width
    return float(2 * dense + attention), dense


def main() -> int:
    if not torch.cuda.is_available():
        print(
            "bench-embedder-gpu needs a CUDA GPU, and torch sees none here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
            "run it on a GPU machine. The CPU benchmark is `make bench-embedder`.",
            file=sys.stderr,
        )
        return 2
    device_name = torch.cuda.get_device_name(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"{device_name}: measuring the bf16 matmul peak")
    peak = matmul_peak()
    print(f"  {peak['tflops']} TFLOP/s ({peak['tflops_by_size']})")

    model, config = qwen3_embedding_shaped()
    per_token, dense = flops_per_token(model, config, SEQUENCE)
    print(f"Qwen3-Embedding-0.6B shape, random weights, bf16: {per_token / 1e9:.3f} GFLOP/token")
    rows: list[dict[str, Any]] = []
    for texts in BATCHES:
        ids = torch.randint(0, config.vocab_size, (texts, SEQUENCE), device="cuda")
        mask = torch.ones_like(ids)

        def step(ids: torch.Tensor = ids, mask: torch.Tensor = mask) -> torch.Tensor:
            with torch.inference_mode():
                hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
                # Last-token pooling (every row is full length here), then L2.
                return torch.nn.functional.normalize(hidden[:, -1].float(), dim=-1)

        per_call, calls = _time(step, warmup=3, seconds=3)
        tokens_per_s = texts * SEQUENCE / per_call
        tflops = tokens_per_s * per_token / 1e12
        rows.append(
            {
                "texts_per_batch": texts,
                "tokens_per_batch": texts * SEQUENCE,
                "batch_ms": round(per_call * 1000, 2),
                "calls": calls,
                "texts_per_s": round(texts / per_call, 1),
                "tokens_per_s": round(tokens_per_s),
                "tflops": round(tflops, 1),
                "fraction_of_peak": round(tflops / peak["tflops"], 3),
            }
        )
        print(f"  batch {texts}: {tokens_per_s:,.0f} tokens/s", flush=True)
        del ids, mask

    best = max(rows, key=lambda row: row["tokens_per_s"])
    results = {
        "model": "Qwen3-Embedding-0.6B shape (random weights)",
        "precision": "bfloat16",
        "sequence_tokens": SEQUENCE,
        "attention": str(getattr(model.config, "_attn_implementation", "")),
        "non_embedding_parameters": dense,
        "gflop_per_token": round(per_token / 1e9, 4),
        "matmul_peak_bf16": peak,
        "tokens_per_s": best["tokens_per_s"],
        "fraction_of_peak": best["fraction_of_peak"],
        "batches": rows,
        "machine": {
            "gpu": device_name,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "python": platform.python_version(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print()
    header = f"{'texts/batch':>12}{'batch ms':>10}{'tokens/s':>12}{'TFLOP/s':>9}{'of peak':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['texts_per_batch']:>12}{row['batch_ms']:>10.1f}{row['tokens_per_s']:>12,}"
            f"{row['tflops']:>9.1f}{row['fraction_of_peak']:>9.1%}"
        )
    print(f"bf16 matmul peak {peak['tflops']} TFLOP/s on {device_name}")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
