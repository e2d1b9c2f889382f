"""The vector store interface, and the choice between its two implementations.

Qdrant Edge (in-process, `edge_store`) is the default: no server to run, and a
query costs well under a millisecond, which the 20 ms search budget needs.
With `QDRANT_URL` set, `qdrant_client_store` serves the same interface from a
Qdrant server, so indexer replicas and separate worker processes can share it.

Every collection has, in one Qdrant collection (or Edge shard):

- a named dense vector, "dense", compared by cosine;
- a named sparse vector, "bm25", with the engine's IDF modifier: BM25 term
  weights of the chunk's analysed text (`services.indexer.sparse`), so a dot
  product with the query's term counts is the chunk's BM25 score. Collections
  made before sparse vectors existed lack it: sparse and hybrid searches on
  them raise `SparseUnavailableError` (reindex them);
- payload indexes on the fields filters use (`PAYLOAD_*` below), created with
  the collection.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

VECTOR_NAME = "dense"
SPARSE_VECTOR_NAME = "bm25"

# Payload fields of a chunk's point. Filters read the first four.
PAYLOAD_SOURCE_PATH = "source_path"  # keyword, prefix-indexed (literal prefix match)
PAYLOAD_MIME_TYPE = "mime_type"  # keyword
PAYLOAD_MODIFIED_AT = "modified_at"  # float: the file's mtime in seconds since the epoch
PAYLOAD_PAGE = "page"  # integer, from 1; absent when the document has no pages
# BM25 bookkeeping (see services.indexer.sparse): the chunk's length in terms and
# the average length its weights were computed with.
PAYLOAD_BM25_LENGTH = "bm25_dl"
PAYLOAD_BM25_AVGDL = "bm25_avgdl"

# Reciprocal rank fusion constant (Cormack et al. 2009), the same in both stores.
RRF_K = 60

MIN_PREFETCH = 100

# Also the format of a collection id: it names an Edge directory or a Qdrant
# collection, so nothing else may reach the store.
COLLECTION_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")

# Qdrant's own limit on dense vector size.
MAX_DIMENSIONS = 65_536


class VectorStoreError(Exception):
    """The store failed for a reason other than the caller's input."""


class CollectionNotFoundError(VectorStoreError):
    def __init__(self, collection_id: str) -> None:
        super().__init__(f"vector collection {collection_id!r} does not exist")
        self.collection_id = collection_id


class SparseUnavailableError(VectorStoreError):
    """The collection has no sparse vectors (it was made before they existed)."""

    def __init__(self, collection_id: str) -> None:
        super().__init__(
            f"vector collection {collection_id!r} was created before keyword (sparse) search "
            "existed; reindex it (delete and import it again) to use sparse or hybrid search"
        )
        self.collection_id = collection_id


class DimensionsConflictError(VectorStoreError):
    """The collection exists with other dimensions than asked."""

    def __init__(self, collection_id: str, existing: int, wanted: int) -> None:
        super().__init__(
            f"vector collection {collection_id!r} has {existing} dimensions, not {wanted}"
        )
        self.collection_id = collection_id
        self.existing = existing
        self.wanted = wanted


@dataclass(frozen=True)
class VectorPoint:
    """One chunk's vectors; `chunk_id` is a UUID string, the point id.

    `terms` maps the chunk's term indices (`textkit.term_index`) to their
    frequencies in the chunk; the store turns them into BM25 weights. None
    writes no sparse vector (and so does a collection without sparse vectors).
    """

    chunk_id: str
    vector: Sequence[float]
    payload: Mapping[str, Any]
    terms: Mapping[int, int] | None = None


class SearchMode(enum.Enum):
    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


class FusionMethod(enum.Enum):
    RRF = "rrf"
    DBSF = "dbsf"


@dataclass(frozen=True)
class PayloadFilter:
    """Conditions on a chunk's payload; every condition set must hold.

    Empty / None / 0 leaves a condition out. Times are seconds since the epoch.
    """

    path_prefix: str = ""  # literal prefix of source_path
    mime_types: tuple[str, ...] = ()  # any of them
    modified_after: float | None = None  # inclusive
    modified_before: float | None = None  # exclusive
    page_from: int = 0  # inclusive; chunks without a page never match a page range
    page_to: int = 0  # inclusive


@dataclass(frozen=True)
class VectorQuery:
    """One search. `terms` are the term indices of the analysed query text, one
    per occurrence (sparse and hybrid); `vector` the query embedding (dense and
    hybrid)."""

    limit: int
    mode: SearchMode = SearchMode.DENSE
    vector: Sequence[float] = ()
    terms: Sequence[int] = ()
    offset: int = 0
    fusion: FusionMethod = FusionMethod.DBSF
    prefetch_limit: int = 0  # 0: max(MIN_PREFETCH, offset + limit)
    score_threshold: float | None = None
    filter: PayloadFilter = PayloadFilter()
    # RM3: expand the keyword query from a first round's best chunks (feedback.py).
    expand: bool = False
    # The keyword query's weights when they are not the terms' counts (RM3's).
    keyword_weights: Mapping[int, float] | None = None

    @property
    def prefetch_depth(self) -> int:
        """Candidates each side of a hybrid query contributes to the fusion."""
        if self.prefetch_limit > 0:
            return self.prefetch_limit
        # The same pool for every page up to MIN_PREFETCH results: fusion (DBSF
        # normalises each list by its own mean and spread) then ranks the same
        # candidates the same way on every page, so pages neither repeat nor
        # skip a result. Deeper pages widen the pool only as far as they need.
        return max(MIN_PREFETCH, self.offset + self.limit)

    def sparse_values(self) -> tuple[list[int], list[float]]:
        """The query's sparse vector: each term weighted by its count in the
        query (the engine's IDF modifier supplies the term's IDF), so a term
        the query repeats counts as often as it does in Lucene's and bm25s's
        BM25 (long queries repeat their subject words); or RM3's weights."""
        if self.keyword_weights is not None:
            indices = sorted(self.keyword_weights)
            return indices, [self.keyword_weights[i] for i in indices]
        counts = Counter(self.terms)
        indices = sorted(counts)
        return indices, [float(counts[i]) for i in indices]


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    score: float


def epoch_seconds(nanoseconds: int) -> float:
    """A time as stored in `modified_at`. Payloads and filters both convert
    through here, so a file's own mtime compares equal to itself."""
    return nanoseconds / 1e9


def check_collection_id(collection_id: str) -> None:
    if COLLECTION_ID.fullmatch(collection_id) is None:
        raise ValueError(f"bad collection id {collection_id!r}")


class VectorStore(Protocol):
    async def open(self) -> None:
        """Loads what exists; called once before anything else."""

    async def close(self) -> None:
        """Flushes and releases everything."""

    async def ping(self) -> None:
        """Returns when the store is usable; raises otherwise."""

    async def dimensions(self, collection_id: str) -> int | None:
        """The collection's vector size, or None when it does not exist."""

    async def create_collection(self, collection_id: str, dimensions: int) -> bool:
        """Creates it; False when it already existed with these dimensions.

        Raises DimensionsConflictError when it exists with other dimensions.
        """

    async def delete_collection(self, collection_id: str) -> bool:
        """Deletes it with its points; False when it did not exist."""

    async def upsert(self, collection_id: str, points: Sequence[VectorPoint]) -> None:
        """Writes points, replacing those with the same ids."""

    async def delete_points(self, collection_id: str, chunk_ids: Sequence[str]) -> None:
        """Deletes points by id; unknown ids are ignored."""

    async def update_file(
        self, collection_id: str, source_path: str, new_source_path: str, modified_at: float
    ) -> None:
        """A document's file moved and/or was touched: every point of `source_path`
        gets the new path and modify time (what filters read); vectors unchanged."""

    async def search(self, collection_id: str, query: VectorQuery) -> list[Hit]:
        """Best points for the query, best first, filtered inside the engine.

        Raises CollectionNotFoundError, and SparseUnavailableError for sparse or
        hybrid search on a collection without sparse vectors.
        """

    async def optimize(self, collection_id: str) -> None:
        """Makes recent writes durable and fast to query (after an import), and
        brings BM25 weights in line with the collection's average chunk length."""
