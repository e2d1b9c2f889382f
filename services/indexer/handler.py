"""IndexerService: one method per RPC."""

from __future__ import annotations

import asyncio
import logging
import os

import grpc
import redis.exceptions

from semantik.internal.v1 import indexer_pb2
from servicekit import errors
from servicekit.grpc_types import ServicerContext
from services.indexer import jobs
from services.indexer.vector_store import (
    COLLECTION_ID,
    MAX_DIMENSIONS,
    CollectionNotFoundError,
    DimensionsConflictError,
    VectorStore,
)

log = logging.getLogger(__name__)

COLLECTION_RESOURCE = "semantik.io/Collection"
MAX_CHUNK_TOKENS = 4096
MAX_QUERY_LIMIT = 1000
MAX_OPERATION_ID = 128


def _collection_violation(collection_id: str) -> str | None:
    if COLLECTION_ID.fullmatch(collection_id) is None:
        return (
            "must start with a lowercase letter and hold at most 63 lowercase letters, "
            "digits and hyphens"
        )
    return None


def _collection_not_found(collection_id: str) -> errors.ServiceError:
    return errors.not_found(COLLECTION_RESOURCE, f"collections/{collection_id}")


def _source_violation(source_path: str) -> str | None:
    """Checks the folder as this process sees it (it is the one that reads it)."""
    if not source_path:
        return "is required"
    if not os.path.isabs(source_path):
        return "must be an absolute path"
    if not os.path.exists(source_path):
        return "does not exist"
    if not os.path.isdir(source_path):
        return "is not a directory"
    if not os.access(source_path, os.R_OK | os.X_OK):
        return "is not readable"
    return None


class IndexerHandler:
    def __init__(self, store: VectorStore, queue: jobs.Queue) -> None:
        self._store = store
        self._queue = queue

    async def CreateVectorCollection(
        self, request: indexer_pb2.CreateVectorCollectionRequest, context: ServicerContext
    ) -> indexer_pb2.CreateVectorCollectionResponse:
        violations = errors.FieldViolations()
        if (problem := _collection_violation(request.collection_id)) is not None:
            violations.add("collection_id", problem)
        if not 1 <= request.dimensions <= MAX_DIMENSIONS:
            violations.add("dimensions", f"must be between 1 and {MAX_DIMENSIONS}")
        violations.raise_if_any()
        try:
            created = await self._store.create_collection(request.collection_id, request.dimensions)
        except DimensionsConflictError as exc:
            raise errors.ServiceError(
                grpc.StatusCode.ALREADY_EXISTS,
                str(exc),
                errors.already_exists(
                    COLLECTION_RESOURCE, f"collections/{request.collection_id}"
                ).details,
            ) from exc
        if created:
            log.info(
                "vector collection %s created (%d dims)", request.collection_id, request.dimensions
            )
        return indexer_pb2.CreateVectorCollectionResponse()

    async def DeleteVectorCollection(
        self, request: indexer_pb2.DeleteVectorCollectionRequest, context: ServicerContext
    ) -> indexer_pb2.DeleteVectorCollectionResponse:
        if (problem := _collection_violation(request.collection_id)) is not None:
            raise errors.invalid_argument({"collection_id": problem})
        if await self._store.delete_collection(request.collection_id):
            log.info("vector collection %s deleted", request.collection_id)
        return indexer_pb2.DeleteVectorCollectionResponse()

    async def StartImport(
        self, request: indexer_pb2.StartImportRequest, context: ServicerContext
    ) -> indexer_pb2.StartImportResponse:
        violations = errors.FieldViolations()
        operation_id = request.operation_id
        if not operation_id:
            # A validate_only check runs before the operation exists.
            if not request.validate_only:
                violations.add("operation_id", "is required")
        elif len(operation_id) > MAX_OPERATION_ID or "/" in operation_id:
            violations.add(
                "operation_id", f"must be at most {MAX_OPERATION_ID} characters without '/'"
            )
        if (problem := _collection_violation(request.collection_id)) is not None:
            violations.add("collection_id", problem)
        problem = await asyncio.to_thread(_source_violation, request.source_path)
        if problem is not None:
            violations.add("source_path", problem)
        chunk_tokens_ok = 1 <= request.chunk_tokens <= MAX_CHUNK_TOKENS
        if not chunk_tokens_ok:
            violations.add("chunk_tokens", f"must be between 1 and {MAX_CHUNK_TOKENS}")
        if request.overlap_tokens < 0:
            violations.add("overlap_tokens", "must not be negative")
        elif chunk_tokens_ok and request.overlap_tokens >= request.chunk_tokens:
            violations.add("overlap_tokens", "must be less than chunk_tokens")
        violations.raise_if_any()
        if await self._store.dimensions(request.collection_id) is None:
            raise _collection_not_found(request.collection_id)
        if request.validate_only:
            return indexer_pb2.StartImportResponse()
        try:
            job_id = await jobs.enqueue_import(self._queue, request)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise errors.unavailable(f"job queue unavailable: {exc}", retry_after_s=2.0) from exc
        return indexer_pb2.StartImportResponse(job_id=job_id)

    async def QueryVectors(
        self, request: indexer_pb2.QueryVectorsRequest, context: ServicerContext
    ) -> indexer_pb2.QueryVectorsResponse:
        violations = errors.FieldViolations()
        if (problem := _collection_violation(request.collection_id)) is not None:
            violations.add("collection_id", problem)
        if not request.vector:
            violations.add("vector", "must not be empty")
        if not 1 <= request.limit <= MAX_QUERY_LIMIT:
            violations.add("limit", f"must be between 1 and {MAX_QUERY_LIMIT}")
        violations.raise_if_any()
        dimensions = await self._store.dimensions(request.collection_id)
        if dimensions is None:
            raise _collection_not_found(request.collection_id)
        if len(request.vector) != dimensions:
            raise errors.invalid_argument(
                {"vector": f"has {len(request.vector)} values; the collection has {dimensions}"}
            )
        try:
            hits = await self._store.query(request.collection_id, request.vector, request.limit)
        except CollectionNotFoundError as exc:  # deleted meanwhile
            raise _collection_not_found(request.collection_id) from exc
        return indexer_pb2.QueryVectorsResponse(
            hits=[indexer_pb2.VectorHit(chunk_id=hit.chunk_id, score=hit.score) for hit in hits]
        )
