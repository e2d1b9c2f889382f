"""The embedder's settings, read once from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from servicekit.config import ConfigError, env_bool, env_int, env_str

# Defaults by device, used when DEFAULT_EMBEDDING_MODEL / DEFAULT_QUANTIZATION
# are unset: a GPU serves Qwen3-Embedding in float16 (the deployed default); a
# CPU serves the bundled MiniLM in float32, which answers a query in
# milliseconds where Qwen3-0.6B takes tens of them.
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_GPU_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_PRECISION = "float32"
DEFAULT_GPU_PRECISION = "float16"
# Padded tokens per forward pass when MAX_BATCH_TOKENS is unset. On 2 CPU
# cores 4096 ran the Cranfield documents at 51 texts/s against 41 with 16384
# (bench-embedder), and bounds how long a query waits behind a batch; a GPU
# needs the larger batches to fill its cores.
DEFAULT_BATCH_TOKENS = 4096
DEFAULT_GPU_BATCH_TOKENS = 16384

# Precisions a model can be loaded in. Which of them a device accepts is
# decided in `model.check_precision`, once the device is known.
PRECISIONS = ("float32", "bfloat16", "float16", "int8")

# How a reranker scores a pair: `cross-encoder` is any sequence-classification
# model (its logit), `qwen3` a Qwen3-Reranker style causal LM ("yes" against
# "no"); `auto` tells them apart from the model's config.json.
RERANKER_KINDS = ("auto", "cross-encoder", "qwen3")


@dataclass(frozen=True)
class EmbedderConfig:
    address: str
    # None: chosen by device (see `for_device`).
    model: str | None
    quantization: str | None
    device: str
    # None: chosen by device (see `for_device`).
    max_batch_tokens: int | None
    max_queued_texts: int
    torch_num_threads: int
    # Run a frozen TorchScript trace of the model when it matches eager.
    torchscript: bool
    # The reranker served beside the embedding model; None: no reranker.
    reranker_model: str | None = None
    reranker_kind: str = "auto"
    # None: from the model's config (cross-encoders capped at 512 tokens).
    reranker_max_tokens: int | None = None
    # None: the embedding model's precision (DEFAULT_QUANTIZATION or the device default).
    reranker_quantization: str | None = None

    @classmethod
    def from_env(cls) -> EmbedderConfig:
        config = cls(
            address=env_str("EMBEDDER_ADDRESS", "127.0.0.1:50052"),
            model=env_str("DEFAULT_EMBEDDING_MODEL", "").strip() or None,
            quantization=env_str("DEFAULT_QUANTIZATION", "").strip().lower() or None,
            device=env_str("EMBEDDER_DEVICE", "auto").strip().lower(),
            max_batch_tokens=env_int("MAX_BATCH_TOKENS", 0) or None,
            # Four full-size requests (2048 texts each): enough to keep the
            # model busy, small enough that a queued text waits seconds, not minutes.
            max_queued_texts=env_int("EMBEDDER_MAX_QUEUED_TEXTS", 8192),
            torch_num_threads=env_int("TORCH_NUM_THREADS", available_cpus()),
            torchscript=env_bool("EMBEDDER_TORCHSCRIPT", True),
            reranker_model=env_str("RERANKER_MODEL", "").strip() or None,
            reranker_kind=env_str("RERANKER_KIND", "auto").strip().lower() or "auto",
            reranker_max_tokens=env_int("RERANKER_MAX_TOKENS", 0) or None,
            reranker_quantization=env_str("RERANKER_QUANTIZATION", "").strip().lower() or None,
        )
        config.validate()
        return config

    def for_device(self, device_type: str) -> EmbedderConfig:
        """Unset model and precision filled in for a device type ("cpu", "cuda")."""
        gpu = device_type == "cuda"
        return replace(
            self,
            model=self.model or (DEFAULT_GPU_MODEL if gpu else DEFAULT_MODEL),
            quantization=self.quantization or (DEFAULT_GPU_PRECISION if gpu else DEFAULT_PRECISION),
            max_batch_tokens=self.max_batch_tokens
            or (DEFAULT_GPU_BATCH_TOKENS if gpu else DEFAULT_BATCH_TOKENS),
        )

    @property
    def reranker_precision(self) -> str | None:
        """RERANKER_QUANTIZATION, else the embedding model's (after `for_device`)."""
        return self.reranker_quantization or self.quantization

    def validate(self) -> None:
        for name, precision in (
            ("DEFAULT_QUANTIZATION", self.quantization),
            ("RERANKER_QUANTIZATION", self.reranker_quantization),
        ):
            if precision is not None and precision not in PRECISIONS:
                raise ConfigError(
                    f"{name} must be one of {', '.join(PRECISIONS)}, got {precision!r}"
                )
        if self.reranker_kind not in RERANKER_KINDS:
            raise ConfigError(
                f"RERANKER_KIND must be one of {', '.join(RERANKER_KINDS)}, "
                f"got {self.reranker_kind!r}"
            )
        if self.device not in {"auto", "cpu"} and not self.device.startswith("cuda"):
            raise ConfigError(
                f"EMBEDDER_DEVICE must be auto, cpu, cuda or cuda:N, got {self.device!r}"
            )
        for name, value in (
            ("MAX_BATCH_TOKENS", self.max_batch_tokens or 1),
            ("EMBEDDER_MAX_QUEUED_TEXTS", self.max_queued_texts),
            ("TORCH_NUM_THREADS", self.torch_num_threads),
            ("RERANKER_MAX_TOKENS", self.reranker_max_tokens or 1),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota.

    A container limited to 2 CPUs on a 64-core host still sees 64 in
    `os.cpu_count()`; 64 OpenMP threads on 2 CPUs' worth of quota thrash.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text(encoding="ascii").split()[:2]
        if quota != "max":
            count = min(count, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, count)
