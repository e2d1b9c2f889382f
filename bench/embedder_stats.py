"""What every contender of `make bench-embedder` reports: one timed pass over the texts."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Pass:
    """One measured pass over every text: wall time, the vectors, each batch's time."""

    contender: str  # "inprocess", "grpc" or "infinity"
    mode: str  # "encode", "unary", "stream" or "http"
    concurrency: int
    seconds: float
    vectors: Vectors  # (texts, dimensions), in the order of the texts
    batch_ms: list[float]  # one per batch: a forward pass in-process, a round trip otherwise

    @property
    def key(self) -> str:
        return f"{self.mode}/{self.concurrency}"


def milliseconds(samples_ms: list[float]) -> dict[str, Any]:
    """Summary and every sample (rounded) of per-batch timings."""
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 2),
        "p50": round(statistics.median(ordered), 2),
        "p95": round(p95, 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
        "all": [round(sample, 1) for sample in samples_ms],
    }


def cosines(reference: Vectors, other: Vectors) -> npt.NDArray[np.float64]:
    """Row-wise cosine similarity of two equally shaped sets of vectors."""
    a = reference.astype(np.float64)
    b = other.astype(np.float64)
    dots = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    result: npt.NDArray[np.float64] = dots / np.maximum(norms, 1e-12)
    return result


def agreement(reference: Vectors, other: Vectors) -> dict[str, Any]:
    values = cosines(reference, other)
    return {
        "texts": len(values),
        "min": round(float(values.min()), 6),
        "mean": round(float(values.mean()), 6),
        "at_least_0_9999": bool(values.min() >= 0.9999),
    }
