"""The embedder's settings, read once from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass

from servicekit.config import ConfigError, env_bool, env_int, env_str

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Precisions a model can be loaded in. Which of them a device accepts is
# decided in `model.check_precision`, once the device is known.
PRECISIONS = ("float32", "bfloat16", "float16", "int8")


@dataclass(frozen=True)
class EmbedderConfig:
    address: str
    model: str
    quantization: str
    device: str
    max_batch_tokens: int
    max_queued_texts: int
    torch_num_threads: int
    # Run a frozen TorchScript trace of the model when it matches eager.
    torchscript: bool

    @classmethod
    def from_env(cls) -> EmbedderConfig:
        config = cls(
            address=env_str("EMBEDDER_ADDRESS", "127.0.0.1:50052"),
            model=env_str("DEFAULT_EMBEDDING_MODEL", DEFAULT_MODEL).strip(),
            quantization=env_str("DEFAULT_QUANTIZATION", "float32").strip().lower(),
            device=env_str("EMBEDDER_DEVICE", "auto").strip().lower(),
            max_batch_tokens=env_int("MAX_BATCH_TOKENS", 16384),
            # Four full-size requests (2048 texts each): enough to keep the
            # model busy, small enough that a queued text waits seconds, not minutes.
            max_queued_texts=env_int("EMBEDDER_MAX_QUEUED_TEXTS", 8192),
            torch_num_threads=env_int("TORCH_NUM_THREADS", os.cpu_count() or 1),
            torchscript=env_bool("EMBEDDER_TORCHSCRIPT", True),
        )
        config.validate()
        return config

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("DEFAULT_EMBEDDING_MODEL must not be empty")
        if self.quantization not in PRECISIONS:
            raise ConfigError(
                f"DEFAULT_QUANTIZATION must be one of {', '.join(PRECISIONS)}, "
                f"got {self.quantization!r}"
            )
        if self.device not in {"auto", "cpu"} and not self.device.startswith("cuda"):
            raise ConfigError(
                f"EMBEDDER_DEVICE must be auto, cpu, cuda or cuda:N, got {self.device!r}"
            )
        for name, value in (
            ("MAX_BATCH_TOKENS", self.max_batch_tokens),
            ("EMBEDDER_MAX_QUEUED_TEXTS", self.max_queued_texts),
            ("TORCH_NUM_THREADS", self.torch_num_threads),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
