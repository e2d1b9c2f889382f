"""Merging ranked lists from several collections.

Scores of different collections are not comparable (BM25 grows with the
collection's vocabulary; fused scores depend on the candidate lists), so each
collection's list is min-max normalised to [0, 1] before the lists are
merged. A collection with one candidate gives it 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    collection_id: str
    chunk_id: str
    score: float


def normalised(hits: Sequence[Candidate]) -> list[Candidate]:
    if not hits:
        return []
    high = max(hit.score for hit in hits)
    low = min(hit.score for hit in hits)
    span = high - low
    return [
        Candidate(hit.collection_id, hit.chunk_id, (hit.score - low) / span if span else 1.0)
        for hit in hits
    ]


def merge(per_collection: Sequence[Sequence[Candidate]]) -> list[Candidate]:
    """One list, best first; ties keep collection order, then rank."""
    merged = [hit for hits in per_collection for hit in normalised(hits)]
    return sorted(merged, key=lambda hit: -hit.score)
