"""The vector store on Qdrant Edge: one in-process shard per collection.

Edge runs Qdrant's storage engine inside this process, so a query is a
function call (well under a millisecond for thousands of vectors) instead of a
network hop to a server. Each collection is a shard in
`<data_dir>/<collection_id>`. Edge's calls are blocking, thread-safe and
release the GIL, so they run on threads: queries on a pool of their own, so
that the search path never queues behind a long write or an index build.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge

from services.indexer.vector_store import (
    VECTOR_NAME,
    CollectionNotFoundError,
    DimensionsConflictError,
    Hit,
    VectorPoint,
    VectorStoreError,
    check_collection_id,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Edge writes this next to the segments; it is how an existing shard's vector
# size is known without querying it.
_CONFIG_FILE = "edge_config.json"


def _edge_config(dimensions: int) -> Any:
    return qdrant_edge.EdgeConfig(
        vectors={
            VECTOR_NAME: qdrant_edge.EdgeVectorParams(
                size=dimensions, distance=qdrant_edge.Distance.Cosine
            )
        }
    )


def _stored_dimensions(path: Path) -> int:
    config = json.loads((path / _CONFIG_FILE).read_text(encoding="utf-8"))
    return int(config["vectors"][VECTOR_NAME]["size"])


class EdgeVectorStore:
    def __init__(self, data_dir: Path, query_threads: int = 4) -> None:
        self._root = data_dir
        self._shards: dict[str, Any] = {}
        self._dims: dict[str, int] = {}
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
                dims = _stored_dimensions(path)
                shard = qdrant_edge.EdgeShard.load(str(path))
            except Exception:
                log.exception("cannot load vector collection in %s; skipped", path)
                continue
            self._shards[path.name] = shard
            self._dims[path.name] = dims
        log.info("Qdrant Edge: %d collections in %s", len(self._shards), self._root)

    async def close(self) -> None:
        shards = list(self._shards.values())
        self._shards.clear()
        self._dims.clear()
        for shard in shards:
            await asyncio.to_thread(_flush_and_close, shard)
        self._query_pool.shutdown(wait=True)

    async def ping(self) -> None:
        if not await asyncio.to_thread(self._root.is_dir):
            raise OSError(f"vector data directory {self._root} is missing")

    async def dimensions(self, collection_id: str) -> int | None:
        return self._dims.get(collection_id)

    async def create_collection(self, collection_id: str, dimensions: int) -> bool:
        path = self._path(collection_id)
        async with self._admin:
            existing = self._dims.get(collection_id)
            if existing is not None:
                if existing != dimensions:
                    raise DimensionsConflictError(collection_id, existing, dimensions)
                return False
            shard = await asyncio.to_thread(_create_shard, path, dimensions)
            self._shards[collection_id] = shard
            self._dims[collection_id] = dimensions
            return True

    async def delete_collection(self, collection_id: str) -> bool:
        path = self._path(collection_id)
        async with self._admin:
            shard = self._shards.pop(collection_id, None)
            self._dims.pop(collection_id, None)
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
        operation = qdrant_edge.UpdateOperation.upsert_points(
            [
                qdrant_edge.Point(
                    point.chunk_id, {VECTOR_NAME: list(point.vector)}, dict(point.payload)
                )
                for point in points
            ]
        )
        await self._call(collection_id, lambda: shard.update(operation))

    async def delete_points(self, collection_id: str, chunk_ids: Sequence[str]) -> None:
        if not chunk_ids:
            return
        shard = self._shard(collection_id)
        operation = qdrant_edge.UpdateOperation.delete_points(list(chunk_ids))
        await self._call(collection_id, lambda: shard.update(operation))

    async def query(self, collection_id: str, vector: Sequence[float], limit: int) -> list[Hit]:
        shard = self._shard(collection_id)
        request = qdrant_edge.QueryRequest(
            limit=limit,
            query=qdrant_edge.Query.Nearest(list(vector), using=VECTOR_NAME),
            with_payload=False,
            with_vector=False,
        )
        points = await self._call(collection_id, lambda: shard.query(request), self._query_pool)
        # Edge hands UUID point ids back as uuid.UUID.
        return [Hit(chunk_id=str(point.id), score=float(point.score)) for point in points]

    async def optimize(self, collection_id: str) -> None:
        shard = self._shard(collection_id)
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
    return qdrant_edge.EdgeShard.create(str(path), _edge_config(dimensions))


def _flush_and_close(shard: Any) -> None:
    try:
        shard.flush()
    finally:
        shard.close()
