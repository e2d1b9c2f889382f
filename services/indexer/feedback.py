"""RM3 pseudo-relevance feedback for the keyword (BM25) side of a search.

A first engine query (the same mode, fusion and filter, at the fixed
candidate depth) gives its FEEDBACK_CHUNKS best chunks. Their terms form a
relevance model (Lavrenko and Croft's RM1): P(w|R) is the sum over those
chunks of tf(w, d) / |d| times the chunk's first-round score. The
EXPANSION_TERMS likeliest terms, normalised to sum to 1, are interpolated
with the query's own term distribution (count / query length) at
ORIGINAL_WEIGHT, as Anserini's Rm3Reranker does, and the result is the
keyword query of the second, real query. The dense side is unchanged.

The parameters are Anserini's published defaults (10 chunks, 10 terms, 0.5),
not fitted to any collection. Anserini also drops terms found in more than
10% of documents, as a stand-in for a stop-word list; our analyser removes
stop words itself, so that filter is left out. No collection statistics are
needed here: the engine's IDF modifier still applies to every query term.

Measured (`make bench-quality`, 2026-11-28): hybrid DBSF nDCG@10 0.420 ->
0.433 on Cranfield and 0.460 -> 0.463 on CISI (whose MRR@10 drops, 0.699 ->
0.675). It costs one extra engine round: the indexer's query time in
`make bench-search` went from 2.3 ms (dense) to 5.0 ms (hybrid with RM3).
Every page of a search gets the same expansion, as the first round never
depends on the page.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from services.indexer import sparse
from services.indexer.vector_store import (
    PAYLOAD_BM25_AVGDL,
    PAYLOAD_BM25_LENGTH,
    SPARSE_VECTOR_NAME,
    VectorQuery,
)

FEEDBACK_CHUNKS = 10
EXPANSION_TERMS = 10
ORIGINAL_WEIGHT = 0.5


def rm3_weights(
    query_terms: Sequence[int],
    feedback: Sequence[tuple[Mapping[int, int], float]],
    *,
    expansion_terms: int = EXPANSION_TERMS,
    original_weight: float = ORIGINAL_WEIGHT,
) -> dict[int, float]:
    """The expanded keyword query: {term index: weight}.

    `query_terms`: the query's term indices, one per occurrence.
    `feedback`: (term frequencies of a first-round chunk, its first-round score).
    Chunks scoring 0 or less, and empty ones, give no evidence; with none at
    all the query stays as written (its count distribution).
    """
    counts = Counter(query_terms)
    total = sum(counts.values())
    if not total:
        return {}
    relevance: dict[int, float] = {}
    for frequencies, score in feedback:
        length = sum(frequencies.values())
        if length <= 0 or score <= 0:
            continue
        for term, tf in frequencies.items():
            relevance[term] = relevance.get(term, 0.0) + tf / length * score
    # Ties broken by term index, so the expansion is deterministic.
    best = sorted(relevance.items(), key=lambda item: (-item[1], item[0]))[:expansion_terms]
    mass = sum(weight for _, weight in best)
    if mass <= 0:
        return {term: count / total for term, count in counts.items()}
    weights = {term: original_weight * count / total for term, count in counts.items()}
    for term, weight in best:
        weights[term] = weights.get(term, 0.0) + (1.0 - original_weight) * weight / mass
    return weights


def first_round(query: VectorQuery) -> VectorQuery:
    """The feedback query: the same search's best FEEDBACK_CHUNKS, whatever page is asked."""
    return dataclasses.replace(
        query, limit=FEEDBACK_CHUNKS, offset=0, score_threshold=None, expand=False
    )


def expanded(query: VectorQuery, points: Iterable[Any]) -> VectorQuery:
    """The second, real query: the keyword side weighted by RM3 (the dense side unchanged).

    `points` are the first round's hits as either engine returns them: each
    with `.vector` (the named sparse vector), `.payload` (the BM25 length
    fields) and `.score`. A hit without them gives no evidence.
    """
    feedback = [found for found in map(_evidence, points) if found is not None]
    return dataclasses.replace(
        query, expand=False, keyword_weights=rm3_weights(query.terms, feedback)
    )


def _evidence(point: Any) -> tuple[dict[int, int], float] | None:
    """(term frequencies, first-round score) of a hit, from its stored BM25 vector."""
    vectors = point.vector if isinstance(point.vector, dict) else {}
    vector = vectors.get(SPARSE_VECTOR_NAME)
    payload = point.payload or {}
    length, avgdl = payload.get(PAYLOAD_BM25_LENGTH), payload.get(PAYLOAD_BM25_AVGDL)
    if vector is None or not isinstance(length, int | float) or not isinstance(avgdl, int | float):
        return None
    frequencies = sparse.recover_frequencies(vector.indices, vector.values, int(length), avgdl)
    return frequencies, float(point.score)
