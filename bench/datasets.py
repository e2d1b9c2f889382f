"""Readers for the BEIR-layout retrieval collections in ../shared/datasets."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

DATASETS = Path(
    os.environ.get("SEMANTIK_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)


@dataclass(frozen=True)
class Collection:
    corpus: dict[str, str]  # doc id -> title + " " + text
    queries: dict[str, str]  # judged queries only
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade


def _jsonl(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8").replace("\r", "")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load(name: str) -> Collection:
    root = DATASETS / name
    corpus = {
        row["_id"]: f"{row.get('title', '')} {row.get('text', '')}".strip()
        for row in _jsonl(root / "corpus.jsonl")
    }
    qrels: dict[str, dict[str, int]] = {}
    lines = (root / "qrels" / "test.tsv").read_text(encoding="utf-8").replace("\r", "")
    for line in lines.splitlines()[1:]:
        if not line.strip():
            continue
        query_id, doc_id, grade = line.split("\t")
        if int(grade) > 0:
            qrels.setdefault(query_id, {})[doc_id] = int(grade)
    queries = {
        row["_id"]: row["text"] for row in _jsonl(root / "queries.jsonl") if row["_id"] in qrels
    }
    return Collection(corpus=corpus, queries=queries, qrels=qrels)


def ndcg_at(ranked: list[str], judged: dict[str, int], k: int = 10) -> float:
    """nDCG@k as trec_eval computes it: gain = grade, log2(rank + 1) discount."""
    dcg = sum(judged.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(judged.values(), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0
