"""The vector store on a Qdrant server, through qdrant-client's AsyncQdrantClient.

Used when `QDRANT_URL` is set: several indexer processes and separate worker
processes can then share one store, which Edge's in-process shards cannot.
gRPC is preferred over REST for its lower per-call cost on the query path.
Collections in Qdrant are named by their collection id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from qdrant_client import AsyncQdrantClient, models

from services.indexer.vector_store import (
    VECTOR_NAME,
    CollectionNotFoundError,
    DimensionsConflictError,
    Hit,
    VectorPoint,
    check_collection_id,
)


class QdrantClientVectorStore:
    def __init__(self, client: AsyncQdrantClient) -> None:
        self._client = client
        # Vector sizes of collections seen, so the query path needs no extra
        # round trip; a collection deleted elsewhere is noticed on failure.
        self._dims: dict[str, int] = {}
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

    async def dimensions(self, collection_id: str) -> int | None:
        cached = self._dims.get(collection_id)
        if cached is not None:
            return cached
        if not await self._client.collection_exists(collection_id):
            return None
        info = await self._client.get_collection(collection_id)
        vectors = info.config.params.vectors
        if not isinstance(vectors, dict) or VECTOR_NAME not in vectors:
            return None  # not a collection this service made
        size = int(vectors[VECTOR_NAME].size)
        self._dims[collection_id] = size
        return size

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
            )
            self._dims[collection_id] = dimensions
            return True

    async def delete_collection(self, collection_id: str) -> bool:
        check_collection_id(collection_id)
        async with self._admin:
            self._dims.pop(collection_id, None)
            return bool(await self._client.delete_collection(collection_id))

    async def _require(self, collection_id: str) -> None:
        if await self.dimensions(collection_id) is None:
            raise CollectionNotFoundError(collection_id)

    async def _not_found_or(self, collection_id: str, exc: Exception) -> Exception:
        self._dims.pop(collection_id, None)
        if not await self._client.collection_exists(collection_id):
            return CollectionNotFoundError(collection_id)
        return exc

    async def upsert(self, collection_id: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        await self._require(collection_id)
        structs = [
            models.PointStruct(
                id=point.chunk_id,
                vector={VECTOR_NAME: list(point.vector)},
                payload=dict(point.payload),
            )
            for point in points
        ]
        try:
            # wait=True: a finished import is searchable at once.
            await self._client.upsert(collection_id, points=structs, wait=True)
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

    async def query(self, collection_id: str, vector: Sequence[float], limit: int) -> list[Hit]:
        try:
            response = await self._client.query_points(
                collection_id,
                query=list(vector),
                using=VECTOR_NAME,
                limit=limit,
                with_payload=False,
                with_vectors=False,
            )
        except Exception as exc:
            raise await self._not_found_or(collection_id, exc) from exc
        return [Hit(chunk_id=str(point.id), score=float(point.score)) for point in response.points]

    async def optimize(self, collection_id: str) -> None:
        # The server runs its optimizers by itself.
        return None
