"""bench/metrics.py against hand-computed trec_eval numbers (no mesh needed)."""

from __future__ import annotations

import math

import pytest

from bench.metrics import Scores, best_rank_documents, evaluate, mrr_at, ndcg_at, recall_at

# One query: d1 grade 3, d3 grade 1, d4 grade 2 (judged, never retrieved), d9 judged 0.
JUDGED = {"d1": 3, "d3": 1, "d4": 2, "d9": 0}


def test_ndcg_graded_gain_and_ideal_from_all_judged_grades() -> None:
    # Ranking d1 (3), d2 (unjudged, 0), d3 (1): DCG = 3/log2(2) + 0 + 1/log2(4) = 3.5.
    # Ideal: grades 3, 2, 1 of every judged document = 3 + 2/log2(3) + 1/2.
    ideal = 3 + 2 / math.log2(3) + 0.5
    assert ndcg_at(["d1", "d2", "d3"], JUDGED, 10) == pytest.approx(3.5 / ideal)
    assert ndcg_at(["d1", "d2", "d3"], JUDGED, 10) == pytest.approx(0.735006, abs=1e-6)


def test_ndcg_perfect_empty_and_cut() -> None:
    assert ndcg_at(["d1", "d4", "d3"], JUDGED, 10) == pytest.approx(1.0)
    assert ndcg_at([], JUDGED, 10) == 0.0
    assert ndcg_at(["d9", "x"], JUDGED, 10) == 0.0
    # At k=1 only rank 1 counts, and the ideal is cut at 1 too: 2/3.
    assert ndcg_at(["d4", "d1"], JUDGED, 1) == pytest.approx(2 / 3)
    # A relevant document at rank 11 is outside nDCG@10.
    assert ndcg_at([f"x{i}" for i in range(10)] + ["d1"], JUDGED, 10) == 0.0


def test_ndcg_no_relevant_judgment_is_zero() -> None:
    assert ndcg_at(["a"], {"a": 0}, 10) == 0.0


def test_recall_counts_missing_relevant_documents() -> None:
    # Three relevant (d1, d3, d4; d9 has grade 0); two retrieved.
    assert recall_at(["d3", "x", "d1", "d9"], JUDGED, 100) == pytest.approx(2 / 3)
    assert recall_at([], JUDGED, 100) == 0.0
    # Rank 101 is outside Recall@100.
    ranked = [f"x{i}" for i in range(100)] + ["d1"]
    assert recall_at(ranked, JUDGED, 100) == 0.0
    assert recall_at(ranked, JUDGED, 101) == pytest.approx(1 / 3)


def test_mrr_first_relevant_rank() -> None:
    assert mrr_at(["x", "d9", "y", "d3", "d1"], JUDGED, 10) == pytest.approx(0.25)
    assert mrr_at(["d1"], JUDGED, 10) == 1.0
    assert mrr_at(["x", "y", "d9"], JUDGED, 10) == 0.0
    assert mrr_at([f"x{i}" for i in range(10)] + ["d1"], JUDGED, 10) == 0.0


def test_best_rank_documents_keeps_first_hit() -> None:
    assert best_rank_documents(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_evaluate_means_over_judged_queries_missing_run_scores_zero() -> None:
    qrels = {
        "q1": {"d1": 1},
        "q2": {"d2": 1, "d3": 1},
        "q3": {"d4": 1},  # no run: 0 everywhere
        "q4": {"d5": 0},  # nothing relevant: not evaluated
    }
    runs = {"q1": ["d1"], "q2": ["x", "d3"], "q4": ["d5"]}
    scores = evaluate(runs, qrels)
    assert scores.queries == 3
    q2_ndcg = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert scores.ndcg_at_10 == pytest.approx((1 + q2_ndcg + 0) / 3)
    assert scores.recall_at_100 == pytest.approx((1 + 0.5 + 0) / 3)
    assert scores.mrr_at_10 == pytest.approx((1 + 0.5 + 0) / 3)
    assert scores.as_dict(3) == {
        "ndcg@10": round(scores.ndcg_at_10, 3),
        "recall@100": 0.5,
        "mrr@10": 0.5,
        "queries": 3,
    }


def test_evaluate_needs_a_judged_query() -> None:
    with pytest.raises(ValueError, match="no judged queries"):
        evaluate({}, {"q": {"d": 0}})
    assert isinstance(evaluate({}, {"q": {"d": 1}}), Scores)
