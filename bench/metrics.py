"""Ranking metrics as trec_eval defines them, for the quality benchmarks.

- `ranked` is one query's document ids, best first, each at most once
  (`best_rank_documents` reduces chunk hits to that).
- `judged` maps document id -> grade for that query; a document is relevant
  when its grade is > 0 (trec_eval's default relevance level 1). Unjudged
  documents count as grade 0.
- `evaluate` averages over every judged query; a query without a run scores 0
  on every metric (trec_eval -c).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    """Means over the judged queries of one run."""

    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int

    def as_dict(self, digits: int = 4) -> dict[str, float | int]:
        return {
            "ndcg@10": round(self.ndcg_at_10, digits),
            "recall@100": round(self.recall_at_100, digits),
            "mrr@10": round(self.mrr_at_10, digits),
            "queries": self.queries,
        }


def best_rank_documents(document_ids: Iterable[str]) -> list[str]:
    """Each document once, at the rank of its best (first) hit."""
    return list(dict.fromkeys(document_ids))


def ndcg_at(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k (trec_eval ndcg_cut): gain = grade, discount log2(rank + 1), ranks from 1.

    The ideal ranking is every judged grade, highest first, cut at k.
    """
    dcg = sum(
        max(judged.get(doc, 0), 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k])
    )
    ideal = sorted((grade for grade in judged.values() if grade > 0), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    """Recall@k (trec_eval recall_k): relevant documents in the top k / all relevant ones."""
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top k; 0 if none."""
    for rank, doc in enumerate(ranked[:k], start=1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def evaluate(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> Scores:
    """Mean nDCG@10, Recall@100 and MRR@10 over the judged queries of `qrels`.

    Only queries with at least one relevant document count (as in trec_eval);
    a judged query missing from `runs` scores 0.
    """
    judged_queries = [qid for qid, grades in qrels.items() if any(g > 0 for g in grades.values())]
    if not judged_queries:
        raise ValueError("no judged queries")
    ndcg: list[float] = []
    recall: list[float] = []
    mrr: list[float] = []
    for qid in judged_queries:
        ranked = runs.get(qid, ())
        ndcg.append(ndcg_at(ranked, qrels[qid], 10))
        recall.append(recall_at(ranked, qrels[qid], 100))
        mrr.append(mrr_at(ranked, qrels[qid], 10))
    return Scores(
        ndcg_at_10=statistics.fmean(ndcg),
        recall_at_100=statistics.fmean(recall),
        mrr_at_10=statistics.fmean(mrr),
        queries=len(judged_queries),
    )
