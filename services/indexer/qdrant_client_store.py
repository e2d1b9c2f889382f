"""The vector store on a Qdrant server, through qdrant-client's AsyncQdrantClient.

Used when `QDRANT_URL` is set: several indexer processes and separate worker
processes can then share one store, which Edge's in-process shards cannot.
gRPC is preferred over REST for its lower per-call cost on the query path.
Collections in Qdrant are named by their collection id.

Each collection holds the dense vector, the BM25 sparse vector (IDF modifier)
and payload indexes for the filters, as the Edge store does. The BM25
statistics of the last `optimize` (see `services.indexer.sparse`) are kept in
the collection's metadata (`{"bm25": {"points": N, "terms": T}}`), so every
process writing to it starts from them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qdrant_client import AsyncQdrantClient, models

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
    check_collection_id,
)

log = logging.getLogger(__name__)

# Key of the BM25 statistics in the collection's metadata.
_STATS_KEY = "bm25"
# Points read or rewritten per call while re-weighting.
_SCAN_BATCH = 1024


@dataclass(frozen=True)
class _Layout:
    dimensions: int
    sparse: bool  # False: made before sparse vectors existed


def _payload_indexes() -> list[tuple[str, Any]]:
    return [
        # prefix=True serves MatchPrefix (a literal, case-sensitive prefix) from the index.
        (
            PAYLOAD_SOURCE_PATH,
            models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, prefix=True),
        ),
        (PAYLOAD_MIME_TYPE, models.PayloadSchemaType.KEYWORD),
        (PAYLOAD_MODIFIED_AT, models.PayloadSchemaType.FLOAT),
        (
            PAYLOAD_PAGE,
            models.IntegerIndexParams(
                type=models.IntegerIndexType.INTEGER, lookup=False, range=True
            ),
        ),
    ]


def client_filter(conditions: PayloadFilter) -> models.Filter | None:
    """The engine filter of a search's payload conditions (None: no filter)."""
    must: list[Any] = []
    if conditions.path_prefix:
        must.append(
            models.FieldCondition(
                key=PAYLOAD_SOURCE_PATH, match=models.MatchPrefix(prefix=conditions.path_prefix)
            )
        )
    if conditions.mime_types:
        must.append(
            models.FieldCondition(
                key=PAYLOAD_MIME_TYPE, match=models.MatchAny(any=list(conditions.mime_types))
            )
        )
    if conditions.modified_after is not None or conditions.modified_before is not None:
        must.append(
            models.FieldCondition(
                key=PAYLOAD_MODIFIED_AT,
                range=models.Range(gte=conditions.modified_after, lt=conditions.modified_before),
            )
        )
    if conditions.page_from or conditions.page_to:
        must.append(
            models.FieldCondition(
                key=PAYLOAD_PAGE,
                range=models.Range(
                    gte=max(1, conditions.page_from), lte=conditions.page_to or None
                ),
            )
        )
    return models.Filter(must=must) if must else None


def client_query(query: VectorQuery, *, for_feedback: bool = False) -> dict[str, Any]:
    """Keyword arguments of a search's `query_points` call; `for_feedback`
    returns what RM3 reads of each hit."""
    engine_filter = client_filter(query.filter)
    indices, values = query.sparse_values()
    keywords = models.SparseVector(indices=indices, values=values)
    common: dict[str, Any] = {
        "limit": query.limit,
        "offset": query.offset,
        "query_filter": engine_filter,
        "score_threshold": query.score_threshold,
        "with_payload": [PAYLOAD_BM25_LENGTH, PAYLOAD_BM25_AVGDL] if for_feedback else False,
        "with_vectors": [SPARSE_VECTOR_NAME] if for_feedback else False,
    }
    if query.mode is SearchMode.DENSE:
        return {"query": list(query.vector), "using": VECTOR_NAME, **common}
    if query.mode is SearchMode.SPARSE:
        return {"query": keywords, "using": SPARSE_VECTOR_NAME, **common}
    depth = query.prefetch_depth
    prefetch = [
        models.Prefetch(
            query=list(query.vector), using=VECTOR_NAME, limit=depth, filter=engine_filter
        )
    ]
    if indices:  # a query of stop words only finds nothing by keywords
        prefetch.append(
            models.Prefetch(
                query=keywords, using=SPARSE_VECTOR_NAME, limit=depth, filter=engine_filter
            )
        )
    fusion: Any = (
        models.RrfQuery(rrf=models.Rrf(k=RRF_K))
        if query.fusion is FusionMethod.RRF
        else models.FusionQuery(fusion=models.Fusion.DBSF)
    )
    return {"query": fusion, "prefetch": prefetch, **common}


def _struct(point: VectorPoint, with_sparse: bool, avgdl: float) -> models.PointStruct:
    vectors: dict[str, Any] = {VECTOR_NAME: list(point.vector)}
    payload = dict(point.payload)
    if with_sparse and point.terms is not None:
        indices, values = sparse.bm25_weights(point.terms, avgdl)
        vectors[SPARSE_VECTOR_NAME] = models.SparseVector(indices=indices, values=values)
        payload[PAYLOAD_BM25_LENGTH] = sum(point.terms.values())
        payload[PAYLOAD_BM25_AVGDL] = avgdl
    return models.PointStruct(id=point.chunk_id, vector=vectors, payload=payload)


class QdrantClientVectorStore:
    def __init__(self, client: AsyncQdrantClient) -> None:
        self._client = client
        # Layouts of collections seen, so the query path needs no extra round
        # trip; a collection deleted elsewhere is noticed on failure.
        self._layouts: dict[str, _Layout] = {}
        # Running BM25 statistics of this process (see services.indexer.sparse).
        self._stats: dict[str, sparse.Bm25Stats] = {}
        self._admin = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> QdrantClientVectorStore:
        return cls(AsyncQdrantClient(url=url, prefer_grpc=True))

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> None:
        await self._client.get_collections()

    async def _layout(self, collection_id: str) -> _Layout | None:
        cached = self._layouts.get(collection_id)
        if cached is not None:
            return cached
        if not await self._client.collection_exists(collection_id):
            return None
        info = await self._client.get_collection(collection_id)
        vectors = info.config.params.vectors
        if not isinstance(vectors, dict) or VECTOR_NAME not in vectors:
            return None  # not a collection this service made
        sparse_vectors = info.config.params.sparse_vectors or {}
        layout = _Layout(int(vectors[VECTOR_NAME].size), SPARSE_VECTOR_NAME in sparse_vectors)
        metadata = getattr(info.config, "metadata", None) or {}
        self._stats.setdefault(collection_id, sparse.Bm25Stats.from_json(metadata.get(_STATS_KEY)))
        self._layouts[collection_id] = layout
        return layout

    async def dimensions(self, collection_id: str) -> int | None:
        layout = await self._layout(collection_id)
        return None if layout is None else layout.dimensions

    async def create_collection(self, collection_id: str, dimensions: int) -> bool:
        check_collection_id(collection_id)
        async with self._admin:
            existing = await self.dimensions(collection_id)
            if existing is not None:
                if existing != dimensions:
                    raise DimensionsConflictError(collection_id, existing, dimensions)
                return False
            await self._client.create_collection(
                collection_id,
                vectors_config={
                    VECTOR_NAME: models.VectorParams(
                        size=dimensions, distance=models.Distance.COSINE
                    )
                },
                sparse_vectors_config={
                    SPARSE_VECTOR_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            for field, schema in _payload_indexes():
                await self._client.create_payload_index(
                    collection_id, field_name=field, field_schema=schema, wait=True
                )
            self._layouts[collection_id] = _Layout(dimensions, True)
            self._stats[collection_id] = sparse.Bm25Stats()
            return True

    async def delete_collection(self, collection_id: str) -> bool:
        check_collection_id(collection_id)
        async with self._admin:
            self._layouts.pop(collection_id, None)
            self._stats.pop(collection_id, None)
            return bool(await self._client.delete_collection(collection_id))

    async def _require(self, collection_id: str) -> _Layout:
        layout = await self._layout(collection_id)
        if layout is None:
            raise CollectionNotFoundError(collection_id)
        return layout

    async def _not_found_or(self, collection_id: str, exc: Exception) -> Exception:
        self._layouts.pop(collection_id, None)
        if not await self._client.collection_exists(collection_id):
            self._stats.pop(collection_id, None)
            return CollectionNotFoundError(collection_id)
        return exc

    async def upsert(self, collection_id: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        layout = await self._require(collection_id)
        stats = self._stats.setdefault(collection_id, sparse.Bm25Stats())
        if layout.sparse:
            stats.add([sum(p.terms.values()) for p in points if p.terms is not None])
        avgdl = stats.avgdl
        structs = [_struct(point, layout.sparse, avgdl) for point in points]
        try:
            # wait=True: a finished import is searchable at once.
            await self._client.upsert(collection_id, points=structs, wait=True)
        except Exception as exc:
            raise await self._not_found_or(collection_id, exc) from exc

    async def update_file(
        self, collection_id: str, source_path: str, new_source_path: str, modified_at: float
    ) -> None:
        await self._require(collection_id)
        of_file = models.Filter(
            must=[
                models.FieldCondition(
                    key=PAYLOAD_SOURCE_PATH, match=models.MatchValue(value=source_path)
                )
            ]
        )
        try:
            await self._client.set_payload(
                collection_id,
                payload={PAYLOAD_SOURCE_PATH: new_source_path, PAYLOAD_MODIFIED_AT: modified_at},
                points=of_file,
                wait=True,
            )
        except Exception as exc:
            raise await self._not_found_or(collection_id, exc) from exc

    async def delete_points(self, collection_id: str, chunk_ids: Sequence[str]) -> None:
        if not chunk_ids:
            return
        await self._require(collection_id)
        selector = models.PointIdsList(points=list(chunk_ids))
        try:
            await self._client.delete(collection_id, points_selector=selector, wait=True)
        except Exception as exc:
            raise await self._not_found_or(collection_id, exc) from exc

    async def search(self, collection_id: str, query: VectorQuery) -> list[Hit]:
        if query.mode is not SearchMode.DENSE:
            if not (await self._require(collection_id)).sparse:
                raise SparseUnavailableError(collection_id)
            if query.mode is SearchMode.SPARSE and not query.terms:
                return []  # only stop words: nothing to match
        try:
            if query.expand and query.terms:
                first = await self._client.query_points(
                    collection_id, **client_query(feedback.first_round(query), for_feedback=True)
                )
                query = feedback.expanded(query, first.points)
            response = await self._client.query_points(collection_id, **client_query(query))
        except Exception as exc:
            raise await self._not_found_or(collection_id, exc) from exc
        return [Hit(chunk_id=str(point.id), score=float(point.score)) for point in response.points]

    async def optimize(self, collection_id: str) -> None:
        # The server runs its segment optimizers by itself; what is left is
        # bringing BM25 weights in line with the collection's average length.
        layout = await self._require(collection_id)
        if not layout.sparse:
            return
        try:
            stats = await self._reweight(collection_id)
            await self._client.update_collection(
                collection_id, metadata={_STATS_KEY: stats.to_json()}
            )
        except Exception as exc:
            raise await self._not_found_or(collection_id, exc) from exc
        self._stats[collection_id] = stats

    async def _reweight(self, collection_id: str) -> sparse.Bm25Stats:
        records: list[sparse.LengthRecord] = []
        offset: Any = None
        while True:
            page, offset = await self._client.scroll(
                collection_id,
                offset=offset,
                limit=_SCAN_BATCH,
                with_payload=[PAYLOAD_BM25_LENGTH, PAYLOAD_BM25_AVGDL],
                with_vectors=False,
            )
            for scrolled in page:
                found = sparse.length_record(scrolled.id, scrolled.payload)
                if found is not None:
                    records.append(found)
            if offset is None:
                break
        stats, stale = sparse.plan_reweight(records)
        avgdl = stats.avgdl
        for first in range(0, len(stale), _SCAN_BATCH):
            batch = {r.point_id: r for r in stale[first : first + _SCAN_BATCH]}
            stored = await self._client.retrieve(
                collection_id,
                ids=list(batch),
                with_payload=False,
                with_vectors=[SPARSE_VECTOR_NAME],
            )
            updates: list[models.PointVectors] = []
            for point in stored:
                vectors = point.vector if isinstance(point.vector, dict) else {}
                vector = vectors.get(SPARSE_VECTOR_NAME)
                if not isinstance(vector, models.SparseVector):
                    continue
                record = batch[str(point.id)]
                terms = sparse.recover_frequencies(
                    vector.indices, vector.values, record.dl, record.used_avgdl or avgdl
                )
                indices, values = sparse.bm25_weights(terms, avgdl)
                updates.append(
                    models.PointVectors(
                        id=point.id,
                        vector={
                            SPARSE_VECTOR_NAME: models.SparseVector(indices=indices, values=values)
                        },
                    )
                )
            if updates:
                ids: list[Any] = [u.id for u in updates]
                await self._client.update_vectors(collection_id, points=updates, wait=True)
                await self._client.set_payload(
                    collection_id, payload={PAYLOAD_BM25_AVGDL: avgdl}, points=ids, wait=True
                )
        if stale:
            log.info(
                "%s: BM25 weights of %d chunks re-weighted (avgdl %.2f)",
                collection_id,
                len(stale),
                avgdl,
            )
        return stats
