"""BM25 weights, their recovery, avgdl bookkeeping, and parity with bm25s."""

from __future__ import annotations

import random
import struct
import uuid
from pathlib import Path

import bm25s
import numpy as np
import pytest

import textkit
from services.indexer import sparse
from services.indexer.edge_store import EdgeVectorStore
from services.indexer.vector_store import (
    PAYLOAD_BM25_AVGDL,
    SPARSE_VECTOR_NAME,
    SearchMode,
    VectorPoint,
    VectorQuery,
)


def float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def test_weights_follow_the_bm25_formula() -> None:
    terms = {7: 3, 2: 1}  # dl = 4
    indices, values = sparse.bm25_weights(terms, avgdl=8.0)
    assert indices == [2, 7]
    norm = 0.9 * (1 - 0.4 + 0.4 * 4 / 8.0)
    assert values == pytest.approx([1 * 1.9 / (1 + norm), 3 * 1.9 / (3 + norm)])
    # Longer than average lowers a weight; more occurrences raise it, up to k1 + 1.
    assert sparse.bm25_weights({1: 1, 2: 9}, 5.0)[1][0] < sparse.bm25_weights({1: 1}, 5.0)[1][0]
    assert sparse.bm25_weights({1: 1000}, 1000.0)[1][0] < sparse.K1 + 1


def test_frequencies_are_recovered_from_float32_weights() -> None:
    rng = random.Random(3)
    for _ in range(300):
        terms = {i: rng.choice([1, 1, 2, 3, 7, 40, 300, 2000]) for i in rng.sample(range(99), 5)}
        avgdl = rng.uniform(20, 3000)
        indices, values = sparse.bm25_weights(terms, avgdl)
        stored = [float32(v) for v in values]
        dl = sum(terms.values())
        assert sparse.recover_frequencies(indices, stored, dl, avgdl) == terms


def test_reweight_plan_uses_exact_statistics_and_a_tolerance() -> None:
    records = [
        sparse.LengthRecord("a", 10, 10.0),
        sparse.LengthRecord("b", 30, 20.1),  # within 1% of the true 20
        sparse.LengthRecord("c", 20, 15.0),  # stale
        sparse.LengthRecord("d", 20, None),  # unknown
    ]
    stats, stale = sparse.plan_reweight(records)
    assert (stats.points, stats.terms, stats.avgdl) == (4, 80, 20.0)
    assert [r.point_id for r in stale] == ["a", "c", "d"]
    assert sparse.Bm25Stats.from_json(stats.to_json()) == stats
    assert sparse.Bm25Stats.from_json("junk") == sparse.Bm25Stats()


def test_query_terms_keep_repeats_and_are_analysed() -> None:
    assert sparse.query_terms("Wings, wing and the WINGS") == [textkit.term_index("wing")] * 3
    assert sparse.query_terms("the of") == []


def corpus(count: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(60)] + ["wing", "flow", "shock", "laminar", "heat"]
    # Lengths vary a lot (b matters) and word use is skewed (idf matters).
    return [
        " ".join(
            rng.choice(words[: rng.randint(5, len(words))]) for _ in range(rng.randint(3, 120))
        )
        for _ in range(count)
    ]


async def test_sparse_search_scores_like_bm25s_after_batched_writes(
    edge_store: EdgeVectorStore,
) -> None:
    """Written in small batches (the running avgdl drifts), optimised, then
    every query scores as bm25s (Lucene variant, k1 0.9, b 0.4) over the same
    terms, times the constant k1 + 1."""
    texts = corpus(300)
    ids = [str(uuid.uuid4()) for _ in texts]
    await edge_store.create_collection("c", 2)
    # The first batches are the shortest texts, so the early estimate is far off.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for first in range(0, len(order), 16):
        batch = order[first : first + 16]
        await edge_store.upsert(
            "c",
            [VectorPoint(ids[i], [1.0, 0.0], {}, sparse.document_terms(texts[i])) for i in batch],
        )
    await edge_store.optimize("c")

    retriever = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    retriever.index([textkit.terms(t) for t in texts], show_progress=False)
    for query in ["wing flow", "shock heat laminar", "w3 w7 w50", "w59 wing"]:
        words = [t for t in dict.fromkeys(textkit.terms(query)) if t in retriever.vocab_dict]
        expected = retriever.get_scores(words) * (sparse.K1 + 1)
        hits = await edge_store.search(
            "c",
            VectorQuery(limit=50, mode=SearchMode.SPARSE, terms=sparse.query_terms(query)),
        )
        assert len(hits) == min(50, int(np.count_nonzero(expected)))
        for hit in hits:
            assert hit.score == pytest.approx(float(expected[ids.index(hit.chunk_id)]), rel=1e-4)
        best = np.sort(expected)[::-1][: len(hits)]
        assert [h.score for h in hits] == pytest.approx(list(best), rel=1e-4)


async def test_optimize_reweights_stale_points_and_keeps_statistics(tmp_path: Path) -> None:
    store = EdgeVectorStore(tmp_path / "v")
    await store.open()
    await store.create_collection("c", 2)
    short = VectorPoint(str(uuid.uuid4()), [1.0, 0.0], {}, sparse.document_terms("wing"))
    await store.upsert("c", [short])  # avgdl 1 for now
    long_text = "flow " * 99 + "wing"
    await store.upsert(
        "c", [VectorPoint(str(uuid.uuid4()), [1.0, 0.0], {}, sparse.document_terms(long_text))]
    )
    await store.optimize("c")
    shard = store._shard("c")
    records = shard.retrieve([short.chunk_id], True, [SPARSE_VECTOR_NAME])
    assert records[0].payload[PAYLOAD_BM25_AVGDL] == pytest.approx(50.5)
    weight = records[0].vector[SPARSE_VECTOR_NAME].values[0]
    assert weight == pytest.approx(sparse.bm25_weights({1: 1}, 50.5)[1][0], rel=1e-6)
    await store.close()

    again = EdgeVectorStore(tmp_path / "v")
    await again.open()
    try:
        assert again._stats["c"] == sparse.Bm25Stats(points=2, terms=101)
    finally:
        await again.close()
