"""IndexerService: one method per RPC."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterable
from typing import Any

import grpc
import redis.exceptions

from semantik.internal.v1 import indexer_pb2
from semantik.v1 import search_pb2
from servicekit import errors
from servicekit.grpc_types import ServicerContext
from servicekit.streams import chained
from services.indexer import jobs, sparse, uploads
from services.indexer.ingest import MAX_FILE_BYTES, STRATEGIES
from services.indexer.source_paths import (
    PathGuard,
    SourcePathError,
    resolve,
    resolve_import_folder,
    resolve_root,
)
from services.indexer.vector_store import (
    COLLECTION_ID,
    MAX_DIMENSIONS,
    CollectionNotFoundError,
    DimensionsConflictError,
    FusionMethod,
    PayloadFilter,
    SearchMode,
    SparseUnavailableError,
    VectorQuery,
    VectorStore,
    epoch_seconds,
)

log = logging.getLogger(__name__)

COLLECTION_RESOURCE = "semantik.io/Collection"
MAX_CHUNK_TOKENS = 4096
MAX_QUERY_LIMIT = 1000
# offset + limit, and hybrid candidates per side: bounds one query's work.
MAX_QUERY_DEPTH = 10_000
MAX_QUERY_TEXT = 16_384
MAX_OPERATION_ID = 128

_MODES = {
    search_pb2.SEARCH_MODE_UNSPECIFIED: SearchMode.DENSE,
    search_pb2.SEARCH_MODE_DENSE: SearchMode.DENSE,
    search_pb2.SEARCH_MODE_SPARSE: SearchMode.SPARSE,
    search_pb2.SEARCH_MODE_HYBRID: SearchMode.HYBRID,
}
_FUSIONS = {
    search_pb2.FUSION_UNSPECIFIED: FusionMethod.DBSF,
    search_pb2.FUSION_RRF: FusionMethod.RRF,
    search_pb2.FUSION_DBSF: FusionMethod.DBSF,
}


def _collection_violation(collection_id: str) -> str | None:
    if COLLECTION_ID.fullmatch(collection_id) is None:
        return (
            "must start with a lowercase letter and hold at most 63 lowercase letters, "
            "digits and hyphens"
        )
    return None


def _collection_not_found(collection_id: str) -> errors.ServiceError:
    return errors.not_found(COLLECTION_RESOURCE, f"collections/{collection_id}")


def _source_violation(
    request: indexer_pb2.StartImportRequest, guard: PathGuard
) -> SourcePathError | None:
    """Checks the folder as this process sees it (it is the one that reads it):
    inside `source_root` when given; else (callers from before sources) any
    absolute readable folder that is neither `/` nor protected."""
    try:
        if request.source_root:
            resolve_import_folder(request.source_root, request.source_path, guard)
        else:
            resolve_root(request.source_path, guard, field="source_path")
    except SourcePathError as exc:
        return exc
    return None


def _upload_failure(exc: Exception, collection_id: str) -> errors.ServiceError:
    """The status of an upload refused by `uploads.write_upload`."""
    if isinstance(exc, uploads.UploadError):
        return errors.invalid_argument({exc.field: exc.message})
    if isinstance(exc, uploads.UploadSpaceError):
        return errors.resource_exhausted(str(exc), retry_after_s=60.0)
    return errors.failed_precondition(str(exc), f"collections/{collection_id}", "UPLOAD_AREA")


def _timestamp(value: Any, field: str, violations: errors.FieldViolations) -> float | None:
    if not 0 <= value.nanos < 1_000_000_000:
        violations.add(field, "nanos must be between 0 and 999999999")
        return None
    return epoch_seconds(value.ToNanoseconds())


def _payload_filter(
    request: indexer_pb2.QueryVectorsRequest, violations: errors.FieldViolations
) -> PayloadFilter:
    """The request's SearchFilter, checked; violations name `filter.<field>`."""
    given = request.filter
    if any(not mime for mime in given.mime_types):
        violations.add("filter.mime_types", "must not hold empty strings")
    after = (
        _timestamp(given.modified_after, "filter.modified_after", violations)
        if given.HasField("modified_after")
        else None
    )
    before = (
        _timestamp(given.modified_before, "filter.modified_before", violations)
        if given.HasField("modified_before")
        else None
    )
    if after is not None and before is not None and after >= before:
        violations.add("filter.modified_after", "must be before filter.modified_before")
    if given.page_from < 0:
        violations.add("filter.page_from", "must not be negative (0: no lower bound)")
    if given.page_to < 0:
        violations.add("filter.page_to", "must not be negative (0: no upper bound)")
    if given.page_to > 0 and given.page_from > given.page_to:
        violations.add("filter.page_from", "must not be greater than filter.page_to")
    return PayloadFilter(
        path_prefix=given.path_prefix,
        mime_types=tuple(dict.fromkeys(given.mime_types)),
        modified_after=after,
        modified_before=before,
        page_from=given.page_from,
        page_to=given.page_to,
    )


def _vector_query(request: indexer_pb2.QueryVectorsRequest) -> VectorQuery:
    """The request as a store query; INVALID_ARGUMENT naming every bad field."""
    violations = errors.FieldViolations()
    if (problem := _collection_violation(request.collection_id)) is not None:
        violations.add("collection_id", problem)
    mode = _MODES.get(request.mode)
    if mode is None:
        violations.add("mode", f"unknown search mode {request.mode}")
    fusion = _FUSIONS.get(request.fusion)
    if fusion is None:
        violations.add("fusion", f"unknown fusion {request.fusion}")
    if mode in (SearchMode.DENSE, SearchMode.HYBRID) and not request.vector:
        violations.add("vector", f"must not be empty in {mode.name.lower()} mode")
    if mode in (SearchMode.SPARSE, SearchMode.HYBRID) and not request.query_text.strip():
        violations.add("query_text", f"must not be blank in {mode.name.lower()} mode")
    if len(request.query_text) > MAX_QUERY_TEXT:
        violations.add("query_text", f"must be at most {MAX_QUERY_TEXT} characters")
    if not 1 <= request.limit <= MAX_QUERY_LIMIT:
        violations.add("limit", f"must be between 1 and {MAX_QUERY_LIMIT}")
    if request.offset < 0:
        violations.add("offset", "must not be negative")
    elif request.offset + max(request.limit, 0) > MAX_QUERY_DEPTH:
        violations.add("offset", f"offset + limit must be at most {MAX_QUERY_DEPTH}")
    if request.prefetch_limit < 0 or request.prefetch_limit > MAX_QUERY_DEPTH:
        violations.add("prefetch_limit", f"must be between 0 and {MAX_QUERY_DEPTH} (0: default)")
    elif 0 < request.prefetch_limit < request.offset + request.limit:
        violations.add("prefetch_limit", "must be 0 (default) or at least offset + limit")
    if not math.isfinite(request.score_threshold):
        violations.add("score_threshold", "must be a finite number")
    expand = request.query_expansion == search_pb2.QUERY_EXPANSION_RM3
    if request.query_expansion not in search_pb2.QueryExpansion.values():
        violations.add("query_expansion", f"unknown query expansion {request.query_expansion}")
    elif expand and mode is SearchMode.DENSE:
        violations.add("query_expansion", "RM3 expands keywords: sparse or hybrid mode only")
    conditions = _payload_filter(request, violations)
    violations.raise_if_any()
    assert mode is not None and fusion is not None
    uses_text = mode is not SearchMode.DENSE
    return VectorQuery(
        limit=request.limit,
        mode=mode,
        vector=list(request.vector) if mode is not SearchMode.SPARSE else [],
        terms=sparse.query_terms(request.query_text) if uses_text else [],
        offset=request.offset,
        fusion=fusion,
        prefetch_limit=request.prefetch_limit,
        score_threshold=request.score_threshold or None,
        filter=conditions,
        expand=expand,
    )


class IndexerHandler:
    def __init__(
        self,
        store: VectorStore,
        queue: jobs.Queue,
        guard: PathGuard | None = None,
        upload_settings: uploads.UploadSettings | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        # Without one (tests), only the system folders are protected.
        self._guard = guard if guard is not None else PathGuard.build()
        # Without them (tests), no data directory: WriteUpload is refused.
        self._uploads = upload_settings if upload_settings is not None else uploads.UploadSettings()

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
            # Files left by an earlier collection of this id are not this one's.
            await self._remove_upload_area(request.collection_id)
        return indexer_pb2.CreateVectorCollectionResponse()

    async def _remove_upload_area(self, collection_id: str) -> None:
        if await asyncio.to_thread(uploads.remove_area, self._uploads, collection_id):
            log.info("upload area of %s removed", collection_id)

    async def DeleteVectorCollection(
        self, request: indexer_pb2.DeleteVectorCollectionRequest, context: ServicerContext
    ) -> indexer_pb2.DeleteVectorCollectionResponse:
        if (problem := _collection_violation(request.collection_id)) is not None:
            raise errors.invalid_argument({"collection_id": problem})
        if await self._store.delete_collection(request.collection_id):
            log.info("vector collection %s deleted", request.collection_id)
        await self._remove_upload_area(request.collection_id)
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
        refused = await asyncio.to_thread(_source_violation, request, self._guard)
        if refused is not None:
            violations.add(refused.field, refused.message)
        chunk_tokens_ok = 1 <= request.chunk_tokens <= MAX_CHUNK_TOKENS
        if not chunk_tokens_ok:
            violations.add("chunk_tokens", f"must be between 1 and {MAX_CHUNK_TOKENS}")
        if request.overlap_tokens < 0:
            violations.add("overlap_tokens", "must not be negative")
        elif chunk_tokens_ok and request.overlap_tokens >= request.chunk_tokens:
            violations.add("overlap_tokens", "must be less than chunk_tokens")
        if request.chunking_strategy not in STRATEGIES:
            violations.add("chunking_strategy", f"{request.chunking_strategy} is not a strategy")
        if not 0 <= request.max_file_bytes <= MAX_FILE_BYTES:
            violations.add("max_file_bytes", f"must be between 0 and {MAX_FILE_BYTES} (64 MiB)")
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

    async def ResolveSourcePath(
        self, request: indexer_pb2.ResolveSourcePathRequest, context: ServicerContext
    ) -> indexer_pb2.ResolveSourcePathResponse:
        try:
            root, path = await asyncio.to_thread(resolve, request.root, request.path, self._guard)
        except SourcePathError as exc:
            raise errors.invalid_argument({exc.field: exc.message}) from None
        return indexer_pb2.ResolveSourcePathResponse(root=root, path=path)

    async def WriteUpload(
        self,
        request_iterator: AsyncIterable[indexer_pb2.WriteUploadRequest],
        context: ServicerContext,
    ) -> indexer_pb2.WriteUploadResponse:
        if not self._uploads.data_dir:
            raise errors.failed_precondition(uploads.NO_DATA_DIR, "INDEXER_DATA_DIR", "UPLOAD_AREA")
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or not first.collection_id:
            raise errors.invalid_argument({"collection_id": "is required on the first message"})
        collection_id = first.collection_id
        if (problem := _collection_violation(collection_id)) is not None:
            raise errors.invalid_argument({"collection_id": problem})
        try:
            result = await uploads.write_upload(
                chained(first, messages), collection_id, self._uploads, self._guard
            )
        except (uploads.UploadError, uploads.UploadAreaError, uploads.UploadSpaceError) as exc:
            raise _upload_failure(exc, collection_id) from None
        return indexer_pb2.WriteUploadResponse(
            folder=result.folder,
            file_names=result.file_names,
            bytes_written=result.bytes_written,
        )

    async def QueryVectors(
        self, request: indexer_pb2.QueryVectorsRequest, context: ServicerContext
    ) -> indexer_pb2.QueryVectorsResponse:
        query = _vector_query(request)
        dimensions = await self._store.dimensions(request.collection_id)
        if dimensions is None:
            raise _collection_not_found(request.collection_id)
        if query.mode is not SearchMode.SPARSE and len(query.vector) != dimensions:
            raise errors.invalid_argument(
                {"vector": f"has {len(query.vector)} values; the collection has {dimensions}"}
            )
        try:
            hits = await self._store.search(request.collection_id, query)
        except CollectionNotFoundError as exc:  # deleted meanwhile
            raise _collection_not_found(request.collection_id) from exc
        except SparseUnavailableError as exc:
            raise errors.failed_precondition(
                str(exc), f"collections/{request.collection_id}", "REINDEX_REQUIRED"
            ) from exc
        return indexer_pb2.QueryVectorsResponse(
            hits=[indexer_pb2.VectorHit(chunk_id=hit.chunk_id, score=hit.score) for hit in hits]
        )
