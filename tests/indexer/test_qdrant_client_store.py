"""The Qdrant-server adapter, proved against qdrant-client's local mode."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from qdrant_client import AsyncQdrantClient

from services.indexer.qdrant_client_store import QdrantClientVectorStore
from services.indexer.vector_store import (
    CollectionNotFoundError,
    DimensionsConflictError,
    VectorPoint,
    VectorQuery,
)


@pytest.fixture
async def store() -> AsyncIterator[QdrantClientVectorStore]:
    store = QdrantClientVectorStore(AsyncQdrantClient(location=":memory:"))
    await store.open()
    yield store
    await store.close()


def point(vector: list[float]) -> VectorPoint:
    chunk = str(uuid.uuid4())
    return VectorPoint(chunk, vector, {"chunk_id": chunk, "source_path": "/d/a.txt"})


async def test_collection_lifecycle(store: QdrantClientVectorStore) -> None:
    await store.ping()
    assert await store.dimensions("c") is None
    assert await store.create_collection("c", 4) is True
    assert await store.create_collection("c", 4) is False
    with pytest.raises(DimensionsConflictError):
        await store.create_collection("c", 5)
    assert await store.dimensions("c") == 4
    assert await store.delete_collection("c") is True
    assert await store.delete_collection("c") is False
    assert await store.dimensions("c") is None


async def test_upsert_query_and_delete_points(store: QdrantClientVectorStore) -> None:
    await store.create_collection("c", 4)
    east, north, west = point([1, 0, 0, 0]), point([0, 1, 0, 0]), point([-1, 0, 0, 0])
    await store.upsert("c", [east, north, west])
    hits = await store.search("c", VectorQuery(limit=3, vector=[0.9, 0.1, 0, 0]))
    assert [h.chunk_id for h in hits] == [east.chunk_id, north.chunk_id, west.chunk_id]
    assert hits[0].score > hits[1].score > hits[2].score
    await store.delete_points("c", [east.chunk_id])
    hits = await store.search("c", VectorQuery(limit=3, vector=[0.9, 0.1, 0, 0]))
    assert [h.chunk_id for h in hits] == [north.chunk_id, west.chunk_id]
    await store.optimize("c")


async def test_unknown_collection_is_not_found(store: QdrantClientVectorStore) -> None:
    with pytest.raises(CollectionNotFoundError):
        await store.search("missing", VectorQuery(limit=1, vector=[1, 0]))
    with pytest.raises(CollectionNotFoundError):
        await store.upsert("missing", [point([1, 0])])
