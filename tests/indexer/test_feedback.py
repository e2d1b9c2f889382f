"""RM3's arithmetic, on a case worked by hand."""

from __future__ import annotations

import pytest

from services.indexer.feedback import rm3_weights


def test_rm3_interpolates_the_query_with_the_relevance_model() -> None:
    # Query: term 1 twice, term 2 once. Feedback chunk A (score 1.0): 1 x2, 3 x2;
    # chunk B (score 0.5): 3 x1, 4 x3. P(w|R) ~ tf/|d| * score:
    # 1: 0.5; 3: 0.5 + 0.125 = 0.625; 4: 0.375 (mass 1.5).
    weights = rm3_weights([1, 1, 2], [({1: 2, 3: 2}, 1.0), ({3: 1, 4: 3}, 0.5)])
    assert weights == pytest.approx(
        {1: 0.5 * 2 / 3 + 0.5 * 0.5 / 1.5, 2: 0.5 / 3, 3: 0.5 * 0.625 / 1.5, 4: 0.5 * 0.375 / 1.5}
    )
    assert sum(weights.values()) == pytest.approx(1.0)


def test_only_the_likeliest_terms_join_the_query() -> None:
    feedback = [({term: term for term in range(1, 30)}, 1.0)]
    weights = rm3_weights([100], feedback, expansion_terms=3)
    assert set(weights) == {100, 29, 28, 27}


def test_chunks_without_evidence_leave_the_query_as_written() -> None:
    assert rm3_weights([5, 5, 6], [({7: 3}, 0.0), ({}, 2.0), ({8: 1}, -1.0)]) == pytest.approx(
        {5: 2 / 3, 6: 1 / 3}
    )
    assert rm3_weights([], [({7: 3}, 1.0)]) == {}
