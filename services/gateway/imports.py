"""Queueing an import: the one path from a public request to an indexer job.

ImportDocuments and RetryOperation both come here, so an operation is
recorded only for a source the indexer accepted (AIP-163 validate_only
first), always with the collection's own chunking, and never stays PENDING
when its job could not be queued.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from semantik.internal.v1 import indexer_pb2, metadata_pb2
from semantik.v1 import operation_pb2
from services.gateway.downstream import Downstreams


async def queue_import(
    downstream: Downstreams,
    operation: operation_pb2.Operation,
    timeout_s: float,
    retry_paths: Sequence[str] = (),
) -> operation_pb2.Operation:
    """Records `operation` (kind, collection, source, globs, size limit and
    `retry_of` as given) and queues its job; returns it as recorded."""
    collection = (
        await downstream.metadata.GetCollection(
            metadata_pb2.GetCollectionRequest(name=operation.collection), timeout=timeout_s
        )
    ).collection
    start = indexer_pb2.StartImportRequest(
        collection_id=operation.collection.removeprefix("collections/"),
        source_path=operation.source_path,
        chunk_tokens=collection.chunking.chunk_tokens,
        overlap_tokens=collection.chunking.overlap_tokens,
        chunking_strategy=collection.chunking.strategy,
        include_globs=operation.include_globs,
        exclude_globs=operation.exclude_globs,
        max_file_bytes=operation.max_file_bytes,
        retry_paths=retry_paths,
        validate_only=True,
    )
    # Check the source first so bad input records no operation at all.
    await downstream.indexer.StartImport(start, timeout=timeout_s)
    created = (
        await downstream.metadata.CreateOperation(
            metadata_pb2.CreateOperationRequest(operation=operation), timeout=timeout_s
        )
    ).operation
    start.validate_only = False
    start.operation_id = created.name.removeprefix("operations/")
    try:
        await downstream.indexer.StartImport(start, timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        # The operation must not stay PENDING forever when its job never queued.
        await downstream.metadata.UpdateOperation(
            metadata_pb2.UpdateOperationRequest(
                name=created.name,
                state=operation_pb2.OPERATION_STATE_FAILED,
                error_message=f"could not queue the import: {exc.details()}",
            ),
            timeout=timeout_s,
        )
        raise
    return created
