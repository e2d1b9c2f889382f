"""MetadataService: one method per RPC. Validates, then asks the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import document_pb2, operation_pb2
from servicekit.channels import remaining
from servicekit.errors import (
    FieldViolations,
    already_exists,
    failed_precondition,
    invalid_argument,
    not_found,
)
from servicekit.grpc_types import ServicerContext
from services.metadata import pagination, resources
from services.metadata.resources import (
    collection_message,
    document_message,
    operation_message,
)
from services.metadata.store import (
    DocumentFilters,
    MetadataStore,
    NewChunk,
    NewCollection,
    NewDocument,
    OperationIsDone,
    OperationUpdate,
    Progress,
)

COLLECTION = "semantik.io/Collection"
DOCUMENT = "semantik.io/Document"
OPERATION = "semantik.io/Operation"

# Defaults of the public ChunkingConfig ("0 means the default"), stored
# resolved so every reader sees the numbers actually used.
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 40
# HydrateChunks answers search results; this bounds one message.
MAX_HYDRATE_IDS = 10_000

DOCUMENT_STATES = frozenset(
    {document_pb2.DOCUMENT_STATE_INDEXED, document_pb2.DOCUMENT_STATE_FAILED}
)
OPERATION_STATES = frozenset(operation_pb2.OperationState.values()) - {
    operation_pb2.OPERATION_STATE_UNSPECIFIED
}


def _check_text(violations: FieldViolations, field: str, value: str) -> None:
    # PostgreSQL text cannot hold NUL; say so rather than fail in the database.
    if "\x00" in value:
        violations.add(field, "must not contain NUL characters")


def _check_non_negative(violations: FieldViolations, field: str, value: int) -> None:
    if value < 0:
        violations.add(field, "must not be negative")


class MetadataHandler:
    def __init__(self, store: MetadataStore, default_timeout_s: float) -> None:
        self._store = store
        self._default_timeout_s = default_timeout_s

    def _timeout(self, context: ServicerContext) -> float:
        return remaining(context, self._default_timeout_s)

    # Collections ---------------------------------------------------------------

    async def CreateCollection(
        self, request: metadata_pb2.CreateCollectionRequest, context: ServicerContext
    ) -> metadata_pb2.CreateCollectionResponse:
        collection = request.collection
        collection_id = resources.parse_collection_name("collection.name", collection.name)
        violations = FieldViolations()
        _check_text(violations, "collection.display_name", collection.display_name)
        _check_text(violations, "collection.description", collection.description)
        _check_text(violations, "collection.embedding_model", collection.embedding_model)
        chunk_tokens = collection.chunking.chunk_tokens or DEFAULT_CHUNK_TOKENS
        overlap_tokens = collection.chunking.overlap_tokens or DEFAULT_OVERLAP_TOKENS
        if collection.chunking.chunk_tokens < 0:
            violations.add("collection.chunking.chunk_tokens", "must not be negative")
        if collection.chunking.overlap_tokens < 0:
            violations.add("collection.chunking.overlap_tokens", "must not be negative")
        elif overlap_tokens >= chunk_tokens:
            violations.add("collection.chunking.overlap_tokens", "must be less than chunk_tokens")
        _check_non_negative(
            violations, "collection.embedding_dimensions", collection.embedding_dimensions
        )
        violations.raise_if_any()
        row = await self._store.create_collection(
            NewCollection(
                id=collection_id,
                display_name=collection.display_name,
                description=collection.description,
                embedding_model=collection.embedding_model,
                embedding_dimensions=collection.embedding_dimensions,
                chunk_tokens=chunk_tokens,
                overlap_tokens=overlap_tokens,
            ),
            self._timeout(context),
        )
        if row is None:
            raise already_exists(COLLECTION, collection.name)
        return metadata_pb2.CreateCollectionResponse(collection=collection_message(row))

    async def GetCollection(
        self, request: metadata_pb2.GetCollectionRequest, context: ServicerContext
    ) -> metadata_pb2.GetCollectionResponse:
        collection_id = resources.parse_collection_name("name", request.name)
        row = await self._store.get_collection(collection_id, self._timeout(context))
        if row is None:
            raise not_found(COLLECTION, request.name)
        return metadata_pb2.GetCollectionResponse(collection=collection_message(row))

    async def ListCollections(
        self, request: metadata_pb2.ListCollectionsRequest, context: ServicerContext
    ) -> metadata_pb2.ListCollectionsResponse:
        size = pagination.page_size(request.page_size)
        position = pagination.decode_token(request.page_token, "collections")
        after = None
        if position is not None:
            after = position.get("after")
            if not isinstance(after, str):
                raise pagination.bad_token()
        rows = await self._store.list_collections(after, size + 1, self._timeout(context))
        page = rows[:size]
        token = ""
        if len(rows) > size:
            token = pagination.encode_token("collections", after=page[-1]["id"])
        return metadata_pb2.ListCollectionsResponse(
            collections=[collection_message(row) for row in page], next_page_token=token
        )

    async def DeleteCollection(
        self, request: metadata_pb2.DeleteCollectionRequest, context: ServicerContext
    ) -> metadata_pb2.DeleteCollectionResponse:
        collection_id = resources.parse_collection_name("name", request.name)
        if not await self._store.delete_collection(collection_id, self._timeout(context)):
            raise not_found(COLLECTION, request.name)
        return metadata_pb2.DeleteCollectionResponse()

    # Operations ----------------------------------------------------------------

    async def CreateOperation(
        self, request: metadata_pb2.CreateOperationRequest, context: ServicerContext
    ) -> metadata_pb2.CreateOperationResponse:
        operation = request.operation
        violations = FieldViolations()
        if operation.kind != operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS:
            violations.add("operation.kind", "must be OPERATION_KIND_IMPORT_DOCUMENTS")
        elif not operation.source_path:
            violations.add("operation.source_path", "is required for an import")
        _check_text(violations, "operation.source_path", operation.source_path)
        violations.raise_if_any()
        collection_id = resources.parse_collection_name(
            "operation.collection", operation.collection
        )
        row = await self._store.create_operation(
            operation.kind,
            collection_id,
            operation.source_path,
            operation_pb2.OPERATION_STATE_PENDING,
            self._timeout(context),
        )
        if row is None:
            raise not_found(COLLECTION, operation.collection)
        return metadata_pb2.CreateOperationResponse(operation=operation_message(row))

    async def GetOperation(
        self, request: metadata_pb2.GetOperationRequest, context: ServicerContext
    ) -> metadata_pb2.GetOperationResponse:
        operation_id = resources.parse_operation_name("name", request.name)
        row = await self._store.get_operation(operation_id, self._timeout(context))
        if row is None:
            raise not_found(OPERATION, request.name)
        return metadata_pb2.GetOperationResponse(operation=operation_message(row))

    async def ListOperations(
        self, request: metadata_pb2.ListOperationsRequest, context: ServicerContext
    ) -> metadata_pb2.ListOperationsResponse:
        size = pagination.page_size(request.page_size)
        position = pagination.decode_token(request.page_token, "operations")
        after = None
        if position is not None:
            try:
                after = (
                    datetime.fromisoformat(position["time"]),
                    uuid.UUID(position["id"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise pagination.bad_token() from exc
        rows = await self._store.list_operations(after, size + 1, self._timeout(context))
        page = rows[:size]
        token = ""
        if len(rows) > size:
            last = page[-1]
            token = pagination.encode_token(
                "operations", time=last["create_time"].isoformat(), id=str(last["id"])
            )
        return metadata_pb2.ListOperationsResponse(
            operations=[operation_message(row) for row in page], next_page_token=token
        )

    async def UpdateOperation(
        self, request: metadata_pb2.UpdateOperationRequest, context: ServicerContext
    ) -> metadata_pb2.UpdateOperationResponse:
        operation_id = resources.parse_operation_name("name", request.name)
        violations = FieldViolations()
        if request.state != operation_pb2.OPERATION_STATE_UNSPECIFIED and (
            request.state not in OPERATION_STATES
        ):
            violations.add("state", "is not a known OperationState")
        progress = None
        if request.HasField("progress"):
            p = request.progress
            for field in (
                "documents_total",
                "documents_done",
                "documents_failed",
                "chunks_done",
                "bytes_done",
            ):
                _check_non_negative(violations, f"progress.{field}", getattr(p, field))
            progress = Progress(
                documents_total=p.documents_total,
                documents_done=p.documents_done,
                documents_failed=p.documents_failed,
                chunks_done=p.chunks_done,
                bytes_done=p.bytes_done,
            )
        for i, error in enumerate(request.document_errors):
            _check_text(violations, f"document_errors[{i}].source_path", error.source_path)
            _check_text(violations, f"document_errors[{i}].reason", error.reason)
        _check_text(violations, "error_message", request.error_message)
        violations.raise_if_any()
        update = OperationUpdate(
            state=request.state or None,
            progress=progress,
            document_errors=[
                {"source_path": e.source_path, "reason": e.reason} for e in request.document_errors
            ],
            error_message=request.error_message,
        )
        try:
            row = await self._store.update_operation(operation_id, update, self._timeout(context))
        except OperationIsDone as exc:
            raise failed_precondition(
                "the operation is done; its state cannot change",
                subject=request.name,
                violation_type="OPERATION_DONE",
            ) from exc
        if row is None:
            raise not_found(OPERATION, request.name)
        return metadata_pb2.UpdateOperationResponse(operation=operation_message(row))

    # Documents -----------------------------------------------------------------

    async def UpsertDocument(
        self, request: metadata_pb2.UpsertDocumentRequest, context: ServicerContext
    ) -> metadata_pb2.UpsertDocumentResponse:
        collection_id = resources.collection_id_of("collection_id", request.collection_id)
        document = request.document
        violations = FieldViolations()
        if not document.source_path:
            violations.add("document.source_path", "is required")
        for field in ("source_path", "content_hash", "mime_type", "error"):
            _check_text(violations, f"document.{field}", getattr(document, field))
        _check_non_negative(violations, "document.size_bytes", document.size_bytes)
        if document.state not in DOCUMENT_STATES:
            violations.add("document.state", "must be DOCUMENT_STATE_INDEXED or _FAILED")
        elif document.state == document_pb2.DOCUMENT_STATE_FAILED and request.chunks:
            violations.add("chunks", "must be empty for a failed document")
        modify_time = None
        if document.HasField("modify_time"):
            try:
                modify_time = document.modify_time.ToDatetime(tzinfo=UTC)
            except (ValueError, OverflowError):
                violations.add("document.modify_time", "is not a valid timestamp")
        chunks = self._chunks(request.chunks, violations)
        violations.raise_if_any()
        stored = await self._store.upsert_document(
            NewDocument(
                collection_id=collection_id,
                source_path=document.source_path,
                content_hash=document.content_hash,
                size_bytes=document.size_bytes,
                mime_type=document.mime_type,
                state=document.state,
                error=document.error,
                modify_time=modify_time,
            ),
            chunks,
            self._timeout(context),
        )
        if stored is None:
            raise not_found(COLLECTION, resources.collection_name(collection_id))
        row, replaced = stored
        return metadata_pb2.UpsertDocumentResponse(
            document=document_message(row), replaced_chunk_ids=[str(i) for i in replaced]
        )

    @staticmethod
    def _chunks(records: Any, violations: FieldViolations) -> list[NewChunk]:
        chunks: list[NewChunk] = []
        seen: set[uuid.UUID] = set()
        for i, record in enumerate(records):
            chunk_id = resources.parse_uuid(record.chunk_id)
            if chunk_id is None:
                violations.add(f"chunks[{i}].chunk_id", "must be a UUID")
                continue
            if chunk_id in seen:
                violations.add(f"chunks[{i}].chunk_id", "repeats an earlier chunk's id")
            seen.add(chunk_id)
            _check_non_negative(violations, f"chunks[{i}].chunk_index", record.chunk_index)
            _check_non_negative(violations, f"chunks[{i}].start_offset", record.start_offset)
            _check_non_negative(violations, f"chunks[{i}].token_count", record.token_count)
            _check_non_negative(violations, f"chunks[{i}].page", record.page)
            if record.end_offset < record.start_offset:
                violations.add(f"chunks[{i}].end_offset", "must not be before start_offset")
            _check_text(violations, f"chunks[{i}].text", record.text)
            chunks.append(
                NewChunk(
                    id=chunk_id,
                    chunk_index=record.chunk_index,
                    text=record.text,
                    start_offset=record.start_offset,
                    end_offset=record.end_offset,
                    token_count=record.token_count,
                    page=record.page,
                )
            )
        return chunks

    async def GetDocument(
        self, request: metadata_pb2.GetDocumentRequest, context: ServicerContext
    ) -> metadata_pb2.GetDocumentResponse:
        collection_id, document_id = resources.parse_document_name("name", request.name)
        row = await self._store.get_document(collection_id, document_id, self._timeout(context))
        if row is None:
            raise not_found(DOCUMENT, request.name)
        return metadata_pb2.GetDocumentResponse(document=document_message(row))

    async def ListDocuments(
        self, request: metadata_pb2.ListDocumentsRequest, context: ServicerContext
    ) -> metadata_pb2.ListDocumentsResponse:
        collection_id = resources.parse_collection_name("parent", request.parent)
        filters = _document_filters(request)
        # AIP-158: a token continues only the listing it came from, same filters.
        listing = f"{collection_id}|{filters!r}"
        size = pagination.page_size(request.page_size)
        position = pagination.decode_token(request.page_token, "documents")
        after = None
        if position is not None:
            after = position.get("after")
            if position.get("listing") != listing or not isinstance(after, str):
                raise pagination.bad_token()
        rows = await self._store.list_documents(
            collection_id, after, size + 1, self._timeout(context), filters
        )
        if rows is None:
            raise not_found(COLLECTION, request.parent)
        page = rows[:size]
        token = ""
        if len(rows) > size:
            token = pagination.encode_token(
                "documents", listing=listing, after=page[-1]["source_path"]
            )
        return metadata_pb2.ListDocumentsResponse(
            documents=[document_message(row) for row in page], next_page_token=token
        )

    async def HydrateChunks(
        self, request: metadata_pb2.HydrateChunksRequest, context: ServicerContext
    ) -> metadata_pb2.HydrateChunksResponse:
        collection_id = resources.collection_id_of("collection_id", request.collection_id)
        if len(request.chunk_ids) > MAX_HYDRATE_IDS:
            raise invalid_argument({"chunk_ids": f"at most {MAX_HYDRATE_IDS} ids per call"})
        violations = FieldViolations()
        ids: list[uuid.UUID] = []
        for i, raw in enumerate(request.chunk_ids):
            chunk_id = resources.parse_uuid(raw)
            if chunk_id is None:
                violations.add(f"chunk_ids[{i}]", "must be a UUID")
            else:
                ids.append(chunk_id)
        violations.raise_if_any()
        if not ids:
            return metadata_pb2.HydrateChunksResponse()
        found = await self._store.hydrate_chunks(collection_id, ids, self._timeout(context))
        return metadata_pb2.HydrateChunksResponse(
            chunks=[
                metadata_pb2.HydratedChunk(
                    chunk=resources.chunk_message(row),
                    document=resources.document_name(collection_id, row["document_id"]),
                    source_path=row["source_path"],
                )
                for row in (found.get(chunk_id) for chunk_id in ids)
                if row is not None
            ]
        )


MAX_FILTER_CHARS = 4096


def _document_filters(request: metadata_pb2.ListDocumentsRequest) -> DocumentFilters:
    """The request's optional filters, checked; unset ones are None."""
    violations = FieldViolations()
    for field in ("path_prefix", "mime_type"):
        value: str = getattr(request, field)
        _check_text(violations, field, value)
        if len(value) > MAX_FILTER_CHARS:
            violations.add(field, f"at most {MAX_FILTER_CHARS} characters")
    after = request.modified_after.ToDatetime(UTC) if request.HasField("modified_after") else None
    before = (
        request.modified_before.ToDatetime(UTC) if request.HasField("modified_before") else None
    )
    if after is not None and before is not None and after >= before:
        violations.add("modified_before", "must be later than modified_after")
    violations.raise_if_any()
    return DocumentFilters(
        path_prefix=request.path_prefix or None,
        mime_type=request.mime_type or None,
        modified_after=after,
        modified_before=before,
    )
