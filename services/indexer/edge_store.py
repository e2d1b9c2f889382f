"""The vector store on Qdrant Edge: one in-process shard per collection.

Edge runs Qdrant's storage engine inside this process, so a query is a
function call (well under a millisecond for thousands of vectors) instead of a
network hop to a server. Each collection is a shard in
`<data_dir>/<collection_id>`. Edge's calls are blocking, thread-safe and
release the GIL, so they run on threads: queries on a pool of their own, so
that the search path never queues behind a long write or an index build.

The shard holds the dense vector, the BM25 sparse vector (IDF modifier) and
payload indexes for the filters. The BM25 statistics of the last `optimize`
(see `services.indexer.sparse`) live next to the segments in
`bm25_stats.json`; writes to one collection are serialised, so the re-weighting
of `optimize` never races an upsert.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge

from services.indexer import feedback, sparse
from services.indexer.vector_store import (
    PAYLOAD_BM25_AVGDL,
    PAYLOAD_BM25_LENGTH,
    PAYLOAD_MIME_TYPE,
    PAYLOAD_MODIFIED_AT,
    PAYLOAD_PAGE,
    PAYLOAD_SOURCE_PATH,
    RRF_K,
    SPARSE_VECTOR_NAME,
    VECTOR_NAME,
    CollectionNotFoundError,
    DimensionsConflictError,
    FusionMethod,
    Hit,
    PayloadFilter,
    SearchMode,
    SparseUnavailableError,
    VectorPoint,
    VectorQuery,
    VectorStoreError,
    check_collection_id,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Edge writes this next to the segments; it is how an existing shard's vector
# size is known without querying it.
_CONFIG_FILE = "edge_config.json"
# Ours: the BM25 statistics of the last optimize.
_STATS_FILE = "bm25_stats.json"

# Points read or rewritten per call while re-weighting.
_SCAN_BATCH = 1024


def _edge_config(dimensions: int) -> Any:
    return qdrant_edge.EdgeConfig(
        vectors={
            VECTOR_NAME: qdrant_edge.EdgeVectorParams(
                size=dimensions, distance=qdrant_edge.Distance.Cosine
            )
        },
        sparse_vectors={
            SPARSE_VECTOR_NAME: qdrant_edge.EdgeSparseVectorParams(
                modifier=qdrant_edge.Modifier.Idf
            )
        },
    )


def _payload_indexes() -> list[tuple[str, Any]]:
    return [
        # prefix=True serves MatchPrefix (a literal, case-sensitive prefix) from the index.
        (PAYLOAD_SOURCE_PATH, qdrant_edge.KeywordIndexParams(prefix=True)),
        (PAYLOAD_MIME_TYPE, qdrant_edge.PayloadSchemaType.Keyword),
        (PAYLOAD_MODIFIED_AT, qdrant_edge.PayloadSchemaType.Float),
        (PAYLOAD_PAGE, qdrant_edge.IntegerIndexParams(lookup=False, range=True)),
    ]


@dataclass(frozen=True)
class _Layout:
    dimensions: int
    sparse: bool  # False: made before sparse vectors existed


def _stored_layout(path: Path) -> _Layout:
    config = json.loads((path / _CONFIG_FILE).read_text(encoding="utf-8"))
    return _Layout(
        dimensions=int(config["vectors"][VECTOR_NAME]["size"]),
        sparse=SPARSE_VECTOR_NAME in (config.get("sparse_vectors") or {}),
    )


def _read_stats(path: Path) -> sparse.Bm25Stats:
    try:
        return sparse.Bm25Stats.from_json(
            json.loads((path / _STATS_FILE).read_text(encoding="utf-8"))
        )
    except (OSError, ValueError):
        return sparse.Bm25Stats()


def _write_stats(path: Path, stats: sparse.Bm25Stats) -> None:
    temporary = path / f"{_STATS_FILE}.tmp"
    temporary.write_text(json.dumps(stats.to_json()), encoding="utf-8")
    os.replace(temporary, path / _STATS_FILE)


def edge_filter(conditions: PayloadFilter) -> Any:
    """The engine filter of a search's payload conditions (None: no filter)."""
    must: list[Any] = []
    if conditions.path_prefix:
        must.append(
            qdrant_edge.FieldCondition(
                key=PAYLOAD_SOURCE_PATH, match=qdrant_edge.MatchPrefix(conditions.path_prefix)
            )
        )
    if conditions.mime_types:
        must.append(
            qdrant_edge.FieldCondition(
                key=PAYLOAD_MIME_TYPE, match=qdrant_edge.MatchAny(list(conditions.mime_types))
            )
        )
    if conditions.modified_after is not None or conditions.modified_before is not None:
        must.append(
            qdrant_edge.FieldCondition(
                key=PAYLOAD_MODIFIED_AT,
                range=qdrant_edge.RangeFloat(
                    gte=conditions.modified_after, lt=conditions.modified_before
                ),
            )
        )
    if conditions.page_from or conditions.page_to:
        must.append(
            qdrant_edge.FieldCondition(
                key=PAYLOAD_PAGE,
                range=qdrant_edge.RangeFloat(
                    gte=max(1, conditions.page_from), lte=conditions.page_to or None
                ),
            )
        )
    return qdrant_edge.Filter(must=must) if must else None


def edge_request(query: VectorQuery, *, for_feedback: bool = False) -> Any:
    """The engine query of a search (the collection has sparse vectors when
    the mode needs them); `for_feedback` returns what RM3 reads of each hit."""
    engine_filter = edge_filter(query.filter)
    dense = qdrant_edge.Query.Nearest(list(query.vector), using=VECTOR_NAME)
    indices, values = query.sparse_values()
    keywords = qdrant_edge.Query.Nearest(
        qdrant_edge.SparseVector(indices, values), using=SPARSE_VECTOR_NAME
    )
    common: dict[str, Any] = {
        "limit": query.limit,
        "offset": query.offset,
        "filter": engine_filter,
        "score_threshold": query.score_threshold,
        "with_payload": [PAYLOAD_BM25_LENGTH, PAYLOAD_BM25_AVGDL] if for_feedback else False,
        "with_vector": [SPARSE_VECTOR_NAME] if for_feedback else False,
    }
    if query.mode is SearchMode.DENSE:
        return qdrant_edge.QueryRequest(query=dense, **common)
    if query.mode is SearchMode.SPARSE:
        return qdrant_edge.QueryRequest(query=keywords, **common)
    depth = query.prefetch_depth
    prefetches = [qdrant_edge.Prefetch(limit=depth, query=dense, filter=engine_filter)]
    if indices:  # a query of stop words only finds nothing by keywords
        prefetches.append(qdrant_edge.Prefetch(limit=depth, query=keywords, filter=engine_filter))
    fusion: Any = (
        qdrant_edge.Fusion.Rrf(k=RRF_K)
        if query.fusion is FusionMethod.RRF
        else qdrant_edge.Fusion.Dbsf()
    )
    return qdrant_edge.QueryRequest(query=fusion, prefetches=prefetches, **common)


class EdgeVectorStore:
    def __init__(self, data_dir: Path, query_threads: int = 4) -> None:
        self._root = data_dir
        self._shards: dict[str, Any] = {}
        self._layouts: dict[str, _Layout] = {}
        # Running BM25 statistics (see services.indexer.sparse).
        self._stats: dict[str, sparse.Bm25Stats] = {}
        self._writes: dict[str, asyncio.Lock] = {}
        # Creating and deleting collections must not interleave.
        self._admin = asyncio.Lock()
        self._query_pool = ThreadPoolExecutor(query_threads, thread_name_prefix="edge-query")

    def _path(self, collection_id: str) -> Path:
        check_collection_id(collection_id)  # the id becomes a directory name
        return self._root / collection_id

    async def open(self) -> None:
        await asyncio.to_thread(self._load_all)

    def _load_all(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        for path in sorted(self._root.iterdir()):
            if not (path / _CONFIG_FILE).is_file():
                continue
            try:
                check_collection_id(path.name)
                layout = _stored_layout(path)
                shard = qdrant_edge.EdgeShard.load(str(path))
            except Exception:
                log.exception("cannot load vector collection in %s; skipped", path)
                continue
            if not layout.sparse:
                log.warning(
                    "vector collection %s has no sparse vectors: dense search only until "
                    "it is reindexed",
                    path.name,
                )
            self._register(path.name, shard, layout, _read_stats(path))
        log.info("Qdrant Edge: %d collections in %s", len(self._shards), self._root)

    def _register(
        self, collection_id: str, shard: Any, layout: _Layout, stats: sparse.Bm25Stats
    ) -> None:
        self._shards[collection_id] = shard
        self._layouts[collection_id] = layout
        self._stats[collection_id] = stats
        self._writes[collection_id] = asyncio.Lock()

    def _forget(self, collection_id: str) -> Any:
        self._layouts.pop(collection_id, None)
        self._stats.pop(collection_id, None)
        self._writes.pop(collection_id, None)
        return self._shards.pop(collection_id, None)

    async def close(self) -> None:
        shards = list(self._shards.values())
        self._shards.clear()
        self._layouts.clear()
        self._stats.clear()
        self._writes.clear()
        for shard in shards:
            await asyncio.to_thread(_flush_and_close, shard)
        self._query_pool.shutdown(wait=True)

    async def ping(self) -> None:
        if not await asyncio.to_thread(self._root.is_dir):
            raise OSError(f"vector data directory {self._root} is missing")

    async def dimensions(self, collection_id: str) -> int | None:
        layout = self._layouts.get(collection_id)
        return None if layout is None else layout.dimensions

    async def create_collection(self, collection_id: str, dimensions: int) -> bool:
        path = self._path(collection_id)
        async with self._admin:
            existing = await self.dimensions(collection_id)
            if existing is not None:
                if existing != dimensions:
                    raise DimensionsConflictError(collection_id, existing, dimensions)
                return False
            shard = await asyncio.to_thread(_create_shard, path, dimensions)
            self._register(collection_id, shard, _Layout(dimensions, True), sparse.Bm25Stats())
            return True

    async def delete_collection(self, collection_id: str) -> bool:
        path = self._path(collection_id)
        async with self._admin:
            shard = self._forget(collection_id)
            if shard is not None:
                await asyncio.to_thread(shard.close)
            existed = await asyncio.to_thread(path.exists)
            if existed:
                await asyncio.to_thread(shutil.rmtree, path)
            return shard is not None or existed

    def _shard(self, collection_id: str) -> Any:
        shard = self._shards.get(collection_id)
        if shard is None:
            raise CollectionNotFoundError(collection_id)
        return shard

    def _layout(self, collection_id: str) -> _Layout:
        layout = self._layouts.get(collection_id)
        if layout is None:
            raise CollectionNotFoundError(collection_id)
        return layout

    async def _call(
        self,
        collection_id: str,
        fn: Callable[[], T],
        pool: ThreadPoolExecutor | None = None,
    ) -> T:
        try:
            if pool is None:
                return await asyncio.to_thread(fn)
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        except Exception as exc:
            # A collection deleted while the call ran shows as a closed shard.
            if collection_id not in self._shards:
                raise CollectionNotFoundError(collection_id) from exc
            raise

    async def upsert(self, collection_id: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        shard = self._shard(collection_id)
        layout = self._layout(collection_id)
        async with self._writes[collection_id]:
            stats = self._stats[collection_id]
            if layout.sparse:
                stats.add([sum(p.terms.values()) for p in points if p.terms is not None])
            avgdl = stats.avgdl
            operation = qdrant_edge.UpdateOperation.upsert_points(
                [_edge_point(point, layout.sparse, avgdl) for point in points]
            )
            await self._call(collection_id, lambda: shard.update(operation))

    async def delete_points(self, collection_id: str, chunk_ids: Sequence[str]) -> None:
        if not chunk_ids:
            return
        shard = self._shard(collection_id)
        operation = qdrant_edge.UpdateOperation.delete_points(list(chunk_ids))
        async with self._writes[collection_id]:
            await self._call(collection_id, lambda: shard.update(operation))

    async def update_file(
        self, collection_id: str, source_path: str, new_source_path: str, modified_at: float
    ) -> None:
        shard = self._shard(collection_id)
        of_file = qdrant_edge.Filter(
            must=[
                qdrant_edge.FieldCondition(
                    key=PAYLOAD_SOURCE_PATH, match=qdrant_edge.MatchValue(source_path)
                )
            ]
        )
        operation = qdrant_edge.UpdateOperation.set_payload_by_filter(
            of_file, {PAYLOAD_SOURCE_PATH: new_source_path, PAYLOAD_MODIFIED_AT: modified_at}
        )
        async with self._writes[collection_id]:
            await self._call(collection_id, lambda: shard.update(operation))

    async def search(self, collection_id: str, query: VectorQuery) -> list[Hit]:
        shard = self._shard(collection_id)
        if query.mode is not SearchMode.DENSE and not self._layout(collection_id).sparse:
            raise SparseUnavailableError(collection_id)
        if query.mode is SearchMode.SPARSE and not query.terms:
            return []  # only stop words: nothing to match
        if query.expand and query.terms:
            first = edge_request(feedback.first_round(query), for_feedback=True)
            hits = await self._call(collection_id, lambda: shard.query(first), self._query_pool)
            query = feedback.expanded(query, hits)
        request = edge_request(query)
        points = await self._call(collection_id, lambda: shard.query(request), self._query_pool)
        # Edge hands UUID point ids back as uuid.UUID.
        return [Hit(chunk_id=str(point.id), score=float(point.score)) for point in points]

    async def optimize(self, collection_id: str) -> None:
        shard = self._shard(collection_id)
        layout = self._layout(collection_id)
        path = self._path(collection_id)
        if layout.sparse:
            async with self._writes[collection_id]:
                stats = await self._call(collection_id, lambda: _reweight(shard, path))
                self._stats[collection_id] = stats
        # Builds the HNSW index once a segment is large enough; until then
        # search is exact, which is fast at that size anyway.
        await self._call(collection_id, lambda: (shard.flush(), shard.optimize()))

    async def count(self, collection_id: str) -> int:
        """Points in the collection (for tests and diagnostics)."""
        shard = self._shard(collection_id)
        return int(await self._call(collection_id, lambda: shard.info().points_count))


def _create_shard(path: Path, dimensions: int) -> Any:
    if (path / _CONFIG_FILE).exists():
        # Not registered, so it failed to load at start-up: keep the data.
        raise VectorStoreError(f"{path} holds a vector collection that cannot be loaded")
    if path.exists():
        # Left over from a create or delete that stopped half way.
        shutil.rmtree(path)
    shard = qdrant_edge.EdgeShard.create(str(path), _edge_config(dimensions))
    for field, schema in _payload_indexes():
        shard.update(qdrant_edge.UpdateOperation.create_field_index(field, schema))
    return shard


def _edge_point(point: VectorPoint, with_sparse: bool, avgdl: float) -> Any:
    vectors: dict[str, Any] = {VECTOR_NAME: list(point.vector)}
    payload = dict(point.payload)
    if with_sparse and point.terms is not None:
        indices, values = sparse.bm25_weights(point.terms, avgdl)
        vectors[SPARSE_VECTOR_NAME] = qdrant_edge.SparseVector(indices, values)
        payload[PAYLOAD_BM25_LENGTH] = sum(point.terms.values())
        payload[PAYLOAD_BM25_AVGDL] = avgdl
    return qdrant_edge.Point(point.chunk_id, vectors, payload)


def _reweight(shard: Any, path: Path) -> sparse.Bm25Stats:
    """Exact BM25 statistics, stale weights rewritten, statistics saved."""
    records: list[sparse.LengthRecord] = []
    offset: Any = None
    while True:
        page, offset = shard.scroll(
            qdrant_edge.ScrollRequest(
                offset=offset,
                limit=_SCAN_BATCH,
                with_payload=[PAYLOAD_BM25_LENGTH, PAYLOAD_BM25_AVGDL],
                with_vector=False,
            )
        )
        for record in page:
            found = sparse.length_record(record.id, record.payload)
            if found is not None:
                records.append(found)
        if offset is None:
            break
    stats, stale = sparse.plan_reweight(records)
    avgdl = stats.avgdl
    for first in range(0, len(stale), _SCAN_BATCH):
        batch = {r.point_id: r for r in stale[first : first + _SCAN_BATCH]}
        stored = shard.retrieve(list(batch), False, [SPARSE_VECTOR_NAME])
        updates = []
        for point in stored:
            vector = (point.vector or {}).get(SPARSE_VECTOR_NAME)
            record = batch[str(point.id)]
            if vector is None:
                continue
            terms = sparse.recover_frequencies(
                vector.indices, vector.values, record.dl, record.used_avgdl or avgdl
            )
            indices, values = sparse.bm25_weights(terms, avgdl)
            updates.append(
                qdrant_edge.PointVectors(
                    point.id, {SPARSE_VECTOR_NAME: qdrant_edge.SparseVector(indices, values)}
                )
            )
        if updates:
            shard.update(qdrant_edge.UpdateOperation.update_vectors(updates))
            shard.update(
                qdrant_edge.UpdateOperation.set_payload(
                    [u.id for u in updates], {PAYLOAD_BM25_AVGDL: avgdl}
                )
            )
    if stale:
        log.info("%s: BM25 weights of %d chunks re-weighted (avgdl %.2f)", path, len(stale), avgdl)
    _write_stats(path, stats)
    return stats


def _flush_and_close(shard: Any) -> None:
    try:
        shard.flush()
    finally:
        shard.close()
