"""BM25 as sparse vectors: document weights, query terms, and average length.

A chunk's sparse vector holds, for each of its terms (`textkit`, hashed by
`textkit.term_index`), the BM25 term-frequency part

    w(t, d) = tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))

with k1 = 0.9 and b = 0.4 (Anserini's and Lucene's defaults), tf the term's
count in the chunk, dl the chunk's number of analysed terms and avgdl the
collection's mean dl. The engine's IDF modifier multiplies each query term by
idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5)), computed from the
collection at query time, and the query weights each term by its count in the
query (as Lucene and bm25s do for a repeated query term), so the dot product
is the chunk's BM25 score (Lucene's variant up to the constant
factor k1 + 1, which does not change a ranking).

avgdl is the one statistic baked into stored weights. The strategy:

- While writing, weights use the collection's running estimate: the exact
  statistics of its last `optimize` (kept with the collection: a sidecar file
  in the Edge shard, the collection's metadata on a Qdrant server) plus the
  lengths written since. An empty collection starts from its first batch.
- Every point records `bm25_dl` (its dl) and `bm25_avgdl` (the avgdl its
  weights used) in its payload.
- `optimize` (the end of every import) scans the `bm25_dl` of every point for
  the exact N and avgdl, and rewrites the sparse vector of every point whose
  `bm25_avgdl` is more than `AVGDL_TOLERANCE` (1%) away from it: the term
  frequencies are recovered exactly from the stored weights, dl and the
  recorded avgdl (`recover_frequencies`), then re-weighted.

So after each import every chunk's weights use an avgdl within 1% of the
collection's true one (exact after the first import), deletions included; and
a large collection that grows a little rewrites nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import textkit
from services.indexer.vector_store import PAYLOAD_BM25_AVGDL, PAYLOAD_BM25_LENGTH

K1 = 0.9
B = 0.4
AVGDL_TOLERANCE = 0.01


def document_terms(text: str) -> dict[int, int]:
    """Term index -> frequency in the text (indices that collide add up)."""
    counts: dict[int, int] = {}
    for term, count in textkit.term_frequencies(text).items():
        index = textkit.term_index(term)
        counts[index] = counts.get(index, 0) + count
    return counts


def query_terms(text: str) -> list[int]:
    """The term indices of a query text, one per occurrence, sorted."""
    return sorted(textkit.term_index(term) for term in textkit.terms(text))


def _length_norm(dl: int, avgdl: float) -> float:
    return K1 * (1.0 - B + B * dl / avgdl)


def bm25_weights(terms: Mapping[int, int], avgdl: float) -> tuple[list[int], list[float]]:
    """The sparse vector (sorted indices, weights) of a chunk's term frequencies."""
    dl = sum(terms.values())
    norm = _length_norm(dl, avgdl if avgdl > 0 else 1.0)
    indices = sorted(terms)
    return indices, [terms[i] * (K1 + 1.0) / (terms[i] + norm) for i in indices]


def recover_frequencies(
    indices: Sequence[int], values: Sequence[float], dl: int, avgdl: float
) -> dict[int, int]:
    """Inverts `bm25_weights` (stored as float32): exact for any frequency a
    chunk can hold (the weight's slope stays far above float32 precision for
    tf up to a few thousand)."""
    norm = _length_norm(dl, avgdl if avgdl > 0 else 1.0)
    recovered: dict[int, int] = {}
    for index, weight in zip(indices, values, strict=True):
        # w = tf (k1+1) / (tf + norm)  =>  tf = w norm / (k1 + 1 - w)
        room = K1 + 1.0 - weight
        tf = round(weight * norm / room) if room > 0 else dl
        recovered[index] = max(1, tf)
    return recovered


@dataclass
class Bm25Stats:
    """Chunks with sparse vectors, and their analysed terms in all."""

    points: int = 0
    terms: int = 0

    @property
    def avgdl(self) -> float:
        return self.terms / self.points if self.points and self.terms else 1.0

    def add(self, lengths: Sequence[int]) -> None:
        self.points += len(lengths)
        self.terms += sum(lengths)

    def to_json(self) -> dict[str, int]:
        return {"points": self.points, "terms": self.terms}

    @classmethod
    def from_json(cls, data: object) -> Bm25Stats:
        if isinstance(data, dict):
            points, terms = data.get("points"), data.get("terms")
            if isinstance(points, int) and isinstance(terms, int):
                return cls(points, terms)
        return cls()


def needs_reweight(used_avgdl: float | None, avgdl: float) -> bool:
    """Whether weights computed with `used_avgdl` are too far from `avgdl`."""
    if used_avgdl is None or used_avgdl <= 0:
        return True
    return abs(used_avgdl - avgdl) > AVGDL_TOLERANCE * avgdl


@dataclass(frozen=True)
class LengthRecord:
    """What `optimize` reads of each point: its id, dl and weights' avgdl."""

    point_id: str
    dl: int
    used_avgdl: float | None  # None: unknown (recovery then assumes the current avgdl)


def plan_reweight(records: Sequence[LengthRecord]) -> tuple[Bm25Stats, list[LengthRecord]]:
    """The collection's exact statistics, and the points to re-weight."""
    stats = Bm25Stats()
    stats.add([record.dl for record in records])
    avgdl = stats.avgdl
    return stats, [r for r in records if needs_reweight(r.used_avgdl, avgdl)]


def length_record(point_id: object, payload: Mapping[str, object] | None) -> LengthRecord | None:
    """The point's LengthRecord, or None when it has no sparse vector."""
    if not payload:
        return None
    dl = payload.get(PAYLOAD_BM25_LENGTH)
    if not isinstance(dl, int | float):
        return None
    used = payload.get(PAYLOAD_BM25_AVGDL)
    return LengthRecord(
        str(point_id), int(dl), float(used) if isinstance(used, int | float) else None
    )
