"""The vector store interface, and the choice between its two implementations.

Qdrant Edge (in-process, `edge_store`) is the default: no server to run, and a
query costs well under a millisecond, which the 20 ms search budget needs.
With `QDRANT_URL` set, `qdrant_client_store` serves the same interface from a
Qdrant server, so indexer replicas and separate worker processes can share it.
Every collection has one named dense vector, "dense", compared by cosine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

VECTOR_NAME = "dense"

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
    """One chunk's vector; `chunk_id` is a UUID string, the point id."""

    chunk_id: str
    vector: Sequence[float]
    payload: Mapping[str, str]


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    score: float


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

    async def query(self, collection_id: str, vector: Sequence[float], limit: int) -> list[Hit]:
        """Nearest points by cosine similarity, best first."""

    async def optimize(self, collection_id: str) -> None:
        """Makes recent writes durable and fast to query (after an import)."""
