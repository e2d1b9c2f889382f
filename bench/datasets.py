"""Readers for the BEIR-layout retrieval collections in ../shared/datasets."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from bench.metrics import ndcg_at

__all__ = ["DATASETS", "Collection", "documents", "load", "ndcg_at"]

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


def documents(name: str) -> dict[str, tuple[str, str]]:
    """Doc id -> (title, text), `\r` stripped, in corpus order (empty documents included)."""
    return {
        row["_id"]: (row.get("title", ""), row.get("text", ""))
        for row in _jsonl(DATASETS / name / "corpus.jsonl")
    }
