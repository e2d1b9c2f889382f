from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

from services.indexer.edge_store import EdgeVectorStore
from services.indexer.vector_store import (
    CollectionNotFoundError,
    DimensionsConflictError,
    VectorPoint,
    VectorQuery,
)


def unit(values: list[float]) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


def points(count: int, dims: int, seed: int = 0) -> list[VectorPoint]:
    rng = random.Random(seed)
    return [
        VectorPoint(
            chunk_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            vector=unit([rng.gauss(0, 1) for _ in range(dims)]),
            payload={"collection_id": "c", "chunk_id": "x", "source_path": f"/d/{i}.txt"},
        )
        for i in range(count)
    ]


async def test_create_is_idempotent_and_refuses_other_dimensions(
    edge_store: EdgeVectorStore,
) -> None:
    assert await edge_store.create_collection("books", 8) is True
    assert await edge_store.create_collection("books", 8) is False
    with pytest.raises(DimensionsConflictError):
        await edge_store.create_collection("books", 16)
    assert await edge_store.dimensions("books") == 8
    assert await edge_store.dimensions("other") is None


async def test_nearest_point_comes_first(edge_store: EdgeVectorStore) -> None:
    await edge_store.create_collection("c", 16)
    stored = points(200, 16)
    await edge_store.upsert("c", stored)
    target = stored[123]
    hits = await edge_store.search("c", VectorQuery(limit=5, vector=target.vector))
    assert len(hits) == 5
    assert hits[0].chunk_id == target.chunk_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_upsert_replaces_by_id(edge_store: EdgeVectorStore) -> None:
    await edge_store.create_collection("c", 4)
    chunk = str(uuid.uuid4())
    await edge_store.upsert("c", [VectorPoint(chunk, [1, 0, 0, 0], {})])
    await edge_store.upsert("c", [VectorPoint(chunk, [0, 1, 0, 0], {})])
    assert await edge_store.count("c") == 1
    hits = await edge_store.search("c", VectorQuery(limit=1, vector=[0, 1, 0, 0]))
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


async def test_deleted_points_are_not_found(edge_store: EdgeVectorStore) -> None:
    await edge_store.create_collection("c", 16)
    stored = points(20, 16)
    await edge_store.upsert("c", stored)
    gone = [p.chunk_id for p in stored[:5]]
    await edge_store.delete_points("c", [*gone, str(uuid.uuid4())])  # unknown ids are ignored
    assert await edge_store.count("c") == 15
    hits = await edge_store.search("c", VectorQuery(limit=20, vector=stored[0].vector))
    assert not set(gone) & {h.chunk_id for h in hits}


async def test_delete_collection_removes_its_data(
    edge_store: EdgeVectorStore, tmp_path: Path
) -> None:
    await edge_store.create_collection("c", 4)
    await edge_store.upsert("c", points(3, 4))
    assert await edge_store.delete_collection("c") is True
    assert await edge_store.delete_collection("c") is False
    assert not (tmp_path / "vectors" / "c").exists()
    assert await edge_store.dimensions("c") is None
    with pytest.raises(CollectionNotFoundError):
        await edge_store.search("c", VectorQuery(limit=1, vector=[1, 0, 0, 0]))
    with pytest.raises(CollectionNotFoundError):
        await edge_store.upsert("c", points(1, 4))
    # The id can be used again, with other dimensions.
    assert await edge_store.create_collection("c", 8) is True


async def test_collections_survive_reopening(tmp_path: Path) -> None:
    stored = points(50, 16)
    first = EdgeVectorStore(tmp_path / "v")
    await first.open()
    await first.create_collection("kept", 16)
    await first.upsert("kept", stored)
    await first.delete_points("kept", [stored[0].chunk_id])
    await first.close()

    second = EdgeVectorStore(tmp_path / "v")
    await second.open()
    try:
        assert await second.dimensions("kept") == 16
        assert await second.count("kept") == 49
        hits = await second.search("kept", VectorQuery(limit=1, vector=stored[7].vector))
        assert hits[0].chunk_id == stored[7].chunk_id
    finally:
        await second.close()


async def test_bad_collection_ids_never_reach_the_disk(edge_store: EdgeVectorStore) -> None:
    with pytest.raises(ValueError):
        await edge_store.create_collection("../escape", 4)


async def test_optimized_3k_collection_finds_each_stored_vector(
    edge_store: EdgeVectorStore,
) -> None:
    # Speed is measured by the search benchmark (make bench-search), not here.
    await edge_store.create_collection("bench", 384)
    stored = points(3000, 384, seed=1)
    for first in range(0, len(stored), 500):
        await edge_store.upsert("bench", stored[first : first + 500])
    await edge_store.optimize("bench")
    for probe in stored[::150]:
        hits = await edge_store.search("bench", VectorQuery(limit=10, vector=probe.vector))
        assert len(hits) == 10
        assert hits[0].chunk_id == probe.chunk_id
