"""MetadataService: one method per RPC. Validates, then asks the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import (
    api_key_pb2,
    collection_pb2,
    document_pb2,
    grant_pb2,
    operation_pb2,
    source_pb2,
    user_pb2,
)
from servicekit.channels import remaining
from servicekit.errors import (
    FieldViolations,
    ServiceError,
    already_exists,
    bounded,
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
    ImportScope,
    MetadataStore,
    Missing,
    NewApiKey,
    NewChunk,
    NewCollection,
    NewDocument,
    NewSource,
    NewUser,
    OperationIsDone,
    OperationUpdate,
    PathTooLong,
    Principal,
    Progress,
    RefreshTokenExists,
    RotateOutcome,
    SourceExists,
    UsersExist,
)

COLLECTION = "semantik.io/Collection"
DOCUMENT = "semantik.io/Document"
OPERATION = "semantik.io/Operation"
USER = "semantik.io/User"
GRANT = "semantik.io/Grant"
API_KEY = "semantik.io/ApiKey"
REFRESH_TOKEN = "semantik.io/RefreshToken"
SOURCE = "semantik.io/Source"
SOURCE_GRANT = "semantik.io/SourceGrant"

# Defaults of the public ChunkingConfig ("0 means the default"), stored
# resolved so every reader sees the numbers actually used.
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 40
# HydrateChunks answers search results; this bounds one message.
MAX_HYDRATE_IDS = 10_000
MAX_DELETE_PATHS = 1000

DOCUMENT_STATES = frozenset(
    {document_pb2.DOCUMENT_STATE_INDEXED, document_pb2.DOCUMENT_STATE_FAILED}
)
IMPORT_KINDS = frozenset(
    {
        operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
        operation_pb2.OPERATION_KIND_RETRY_DOCUMENTS,
        operation_pb2.OPERATION_KIND_UPLOAD_DOCUMENTS,
    }
)
OPERATION_STATES = frozenset(operation_pb2.OperationState.values()) - {
    operation_pb2.OPERATION_STATE_UNSPECIFIED
}
USER_ROLES = frozenset(user_pb2.Role.values()) - {user_pb2.ROLE_UNSPECIFIED}
COLLECTION_ROLES = frozenset(grant_pb2.CollectionRole.values()) - {
    grant_pb2.COLLECTION_ROLE_UNSPECIFIED
}
SOURCE_ROLES = frozenset(source_pb2.SourceRole.values()) - {source_pb2.SOURCE_ROLE_UNSPECIFIED}
# Linux's PATH_MAX.
MAX_PATH_CHARS = 4096
API_KEY_VERBS = frozenset(api_key_pb2.ApiKeyVerb.values()) - {api_key_pb2.API_KEY_VERB_UNSPECIFIED}
# SHA-256, of refresh tokens and of API key secrets.
HASH_BYTES = 32
# A key names its collections; this bounds one row.
MAX_API_KEY_COLLECTIONS = 1000
ROTATE_RESULTS = {
    RotateOutcome.ROTATED: metadata_pb2.ROTATE_RESULT_ROTATED,
    RotateOutcome.REUSED: metadata_pb2.ROTATE_RESULT_REUSED,
    RotateOutcome.EXPIRED: metadata_pb2.ROTATE_RESULT_EXPIRED,
    RotateOutcome.INVALID: metadata_pb2.ROTATE_RESULT_INVALID,
}


def _check_text(violations: FieldViolations, field: str, value: str) -> None:
    # PostgreSQL text cannot hold NUL; say so rather than fail in the database.
    if "\x00" in value:
        violations.add(field, "must not contain NUL characters")


def _check_non_negative(violations: FieldViolations, field: str, value: float) -> None:
    if value < 0:
        violations.add(field, "must not be negative")


def _check_hash(violations: FieldViolations, field: str, value: bytes) -> None:
    if len(value) != HASH_BYTES:
        violations.add(field, f"must be a SHA-256 digest ({HASH_BYTES} bytes)")


def _check_user_id(violations: FieldViolations, field: str, value: str) -> None:
    if not resources.is_user_id(value):
        violations.add(field, f"must be a user id: {resources.USER_ID_RULE}")


def _check_collection_id(violations: FieldViolations, field: str, value: str) -> None:
    if not resources.is_collection_id(value):
        violations.add(field, f"must be a collection id: {resources.COLLECTION_ID_RULE}")


def _check_source_id(violations: FieldViolations, field: str, value: str) -> None:
    if not resources.is_source_id(value):
        violations.add(field, f"must be a source id: {resources.SOURCE_ID_RULE}")


def _optional_user_id(violations: FieldViolations, field: str, value: str) -> str | None:
    """A user id that may be left empty (None then)."""
    if not value:
        return None
    _check_user_id(violations, field, value)
    return value


def _source_name(violations: FieldViolations, field: str, name: str) -> str:
    """The id of `sources/{id}`; "" (after a violation) when `name` is not one."""
    source_id = resources.source_id_in(name)
    if source_id is None:
        violations.add(field, resources.SOURCE_NAME_RULE)
    return source_id or ""


def _check_path(violations: FieldViolations, field: str, path: str, *, root_allowed: bool) -> None:
    """A canonical absolute path: `/`, then names that are not empty, `.` or
    `..` (so no `//` and no trailing `/`); `/` itself only when allowed."""
    if not path:
        violations.add(field, "is required")
    elif "\x00" in path:
        violations.add(field, "must not contain NUL characters")
    elif len(path) > MAX_PATH_CHARS:
        violations.add(field, f"at most {MAX_PATH_CHARS} characters")
    elif not path.startswith("/"):
        violations.add(field, "must be an absolute path")
    elif path == "/":
        if not root_allowed:
            violations.add(field, "must not be the filesystem root")
    elif path.endswith("/"):
        violations.add(field, "must not end with a slash")
    elif any(part in ("", ".", "..") for part in path[1:].split("/")):
        violations.add(field, "must be canonical: no empty, '.' or '..' parts")


def _time(violations: FieldViolations, field: str, stamp: timestamp_pb2.Timestamp) -> datetime:
    """A Timestamp as an aware datetime; the epoch (after a violation) when invalid."""
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        violations.add(field, "is not a valid timestamp")
        return datetime.fromtimestamp(0, UTC)


def _required_time(
    violations: FieldViolations, field: str, message: Any, attribute: str
) -> datetime:
    if not message.HasField(attribute):
        violations.add(field, "is required")
    return _time(violations, field, getattr(message, attribute))


def _missing(missing: Missing) -> Exception:
    if missing.kind == "collection":
        return not_found(COLLECTION, resources.collection_name(missing.row_id))
    if missing.kind == "source":
        return not_found(SOURCE, resources.source_name(missing.row_id))
    return not_found(USER, resources.user_name(missing.row_id))


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
        if collection.chunking.strategy not in collection_pb2.ChunkingStrategy.values():
            violations.add("collection.chunking.strategy", "not a ChunkingStrategy")
        _check_non_negative(
            violations, "collection.embedding_dimensions", collection.embedding_dimensions
        )
        if request.owner_user_id:
            _check_user_id(violations, "owner_user_id", request.owner_user_id)
        violations.raise_if_any()
        try:
            row = await self._store.create_collection(
                NewCollection(
                    id=collection_id,
                    display_name=collection.display_name,
                    description=collection.description,
                    embedding_model=collection.embedding_model,
                    embedding_dimensions=collection.embedding_dimensions,
                    chunk_tokens=chunk_tokens,
                    overlap_tokens=overlap_tokens,
                    chunking_strategy=collection.chunking.strategy
                    or collection_pb2.CHUNKING_STRATEGY_RECURSIVE,
                ),
                self._timeout(context),
                owner_user_id=request.owner_user_id or None,
            )
        except Missing as exc:
            raise _missing(exc) from exc
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
        only_ids = _restriction(request)
        if only_ids is not None and not only_ids:
            return metadata_pb2.ListCollectionsResponse()
        rows = await self._store.list_collections(after, size + 1, self._timeout(context), only_ids)
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
        if operation.kind not in IMPORT_KINDS:
            violations.add(
                "operation.kind",
                "must be OPERATION_KIND_IMPORT_DOCUMENTS, OPERATION_KIND_RETRY_DOCUMENTS "
                "or OPERATION_KIND_UPLOAD_DOCUMENTS",
            )
        elif not operation.source_path:
            violations.add("operation.source_path", "is required for an import")
        _check_text(violations, "operation.source_path", operation.source_path)
        retry_of = None
        if operation.kind == operation_pb2.OPERATION_KIND_RETRY_DOCUMENTS:
            retry_of = resources.parse_operation_name("operation.retry_of", operation.retry_of)
        elif operation.retry_of:
            violations.add("operation.retry_of", "is only for OPERATION_KIND_RETRY_DOCUMENTS")
        for field_name in ("include_globs", "exclude_globs"):
            for i, glob in enumerate(getattr(operation, field_name)):
                _check_text(violations, f"operation.{field_name}[{i}]", glob)
        _check_non_negative(violations, "operation.max_file_bytes", operation.max_file_bytes)
        source_id = None
        if operation.source:
            source_id = _source_name(violations, "operation.source", operation.source)
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
            retry_of=retry_of,
            scope=ImportScope(
                tuple(operation.include_globs),
                tuple(operation.exclude_globs),
                operation.max_file_bytes,
                source_id,
            ),
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
        only_ids = _restriction(request)
        if only_ids is not None and not only_ids:
            return metadata_pb2.ListOperationsResponse()
        rows = await self._store.list_operations(after, size + 1, self._timeout(context), only_ids)
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
                "documents_unchanged",
                "documents_removed",
                "bytes_total",
                "chunks_total",
            ):
                _check_non_negative(violations, f"progress.{field}", getattr(p, field))
            eta_seconds = None
            if p.HasField("eta"):
                eta_seconds = p.eta.ToNanoseconds() / 1e9
                _check_non_negative(violations, "progress.eta", eta_seconds)
            progress = Progress(
                documents_total=p.documents_total,
                documents_done=p.documents_done,
                documents_failed=p.documents_failed,
                chunks_done=p.chunks_done,
                bytes_done=p.bytes_done,
                documents_unchanged=p.documents_unchanged,
                documents_removed=p.documents_removed,
                bytes_total=p.bytes_total,
                chunks_total=p.chunks_total,
                eta_seconds=eta_seconds,
            )
        for field_name in ("document_errors", "dead_letters"):
            for i, error in enumerate(getattr(request, field_name)):
                _check_text(violations, f"{field_name}[{i}].source_path", error.source_path)
                _check_text(violations, f"{field_name}[{i}].reason", error.reason)
                _check_non_negative(violations, f"{field_name}[{i}].attempts", error.attempts)
        _check_text(violations, "error_message", request.error_message)
        violations.raise_if_any()
        update = OperationUpdate(
            state=request.state or None,
            progress=progress,
            document_errors=[_stored_error(e) for e in request.document_errors],
            error_message=request.error_message,
            dead_letters=[_stored_error(e) for e in request.dead_letters],
        )
        try:
            row = await self._store.update_operation(operation_id, update, self._timeout(context))
        except OperationIsDone as exc:
            raise _operation_done(request.name, exc.state) from exc
        if row is None:
            raise not_found(OPERATION, request.name)
        return metadata_pb2.UpdateOperationResponse(operation=operation_message(row))

    async def CancelOperation(
        self, request: metadata_pb2.CancelOperationRequest, context: ServicerContext
    ) -> metadata_pb2.CancelOperationResponse:
        operation_id = resources.parse_operation_name("name", request.name)
        try:
            row = await self._store.cancel_operation(operation_id, self._timeout(context))
        except OperationIsDone as exc:
            raise _operation_done(request.name, exc.state) from exc
        if row is None:
            raise not_found(OPERATION, request.name)
        return metadata_pb2.CancelOperationResponse(operation=operation_message(row))

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
            _check_text(violations, f"chunks[{i}].heading", record.heading)
            chunks.append(
                NewChunk(
                    id=chunk_id,
                    chunk_index=record.chunk_index,
                    text=record.text,
                    start_offset=record.start_offset,
                    end_offset=record.end_offset,
                    token_count=record.token_count,
                    page=record.page,
                    heading=record.heading,
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
        after = pagination.after_key(request.page_token, "documents", listing)
        rows = await self._store.list_documents(
            collection_id, after, size + 1, self._timeout(context), filters
        )
        if rows is None:
            raise not_found(COLLECTION, request.parent)
        page, token = pagination.next_page(rows, size, "documents", listing, "source_path")
        return metadata_pb2.ListDocumentsResponse(
            documents=[document_message(row) for row in page], next_page_token=token
        )

    async def DeleteDocuments(
        self, request: metadata_pb2.DeleteDocumentsRequest, context: ServicerContext
    ) -> metadata_pb2.DeleteDocumentsResponse:
        collection_id = resources.collection_id_of("collection_id", request.collection_id)
        violations = FieldViolations()
        if len(request.source_paths) > MAX_DELETE_PATHS:
            violations.add("source_paths", f"at most {MAX_DELETE_PATHS} paths per call")
        for i, path in enumerate(request.source_paths[:MAX_DELETE_PATHS]):
            _check_text(violations, f"source_paths[{i}]", path)
        violations.raise_if_any()
        count, chunk_ids = await self._store.delete_documents(
            collection_id, list(request.source_paths), self._timeout(context)
        )
        return metadata_pb2.DeleteDocumentsResponse(
            chunk_ids=[str(chunk_id) for chunk_id in chunk_ids], deleted_count=count
        )

    async def UpdateDocumentFile(
        self, request: metadata_pb2.UpdateDocumentFileRequest, context: ServicerContext
    ) -> metadata_pb2.UpdateDocumentFileResponse:
        collection_id = resources.collection_id_of("collection_id", request.collection_id)
        violations = FieldViolations()
        if not request.source_path:
            violations.add("source_path", "is required")
        _check_text(violations, "source_path", request.source_path)
        _check_text(violations, "new_source_path", request.new_source_path)
        modify_time = None
        if request.HasField("modify_time"):
            try:
                modify_time = request.modify_time.ToDatetime(tzinfo=UTC)
            except (ValueError, OverflowError):
                violations.add("modify_time", "is not a valid timestamp")
        violations.raise_if_any()
        row = await self._store.update_document_file(
            collection_id,
            request.source_path,
            request.new_source_path or request.source_path,
            modify_time,
            self._timeout(context),
        )
        if row is None:
            raise not_found(DOCUMENT, request.source_path)
        return metadata_pb2.UpdateDocumentFileResponse(document=document_message(row))

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

    # Users -------------------------------------------------------------------------

    async def CreateUser(
        self, request: metadata_pb2.CreateUserRequest, context: ServicerContext
    ) -> metadata_pb2.CreateUserResponse:
        record = request.user
        user_id = resources.parse_user_name("user.user.name", record.user.name)
        violations = FieldViolations()
        _check_text(violations, "user.user.display_name", record.user.display_name)
        if record.user.role not in USER_ROLES:
            violations.add("user.user.role", "must be ROLE_ADMIN, ROLE_EDITOR or ROLE_VIEWER")
        if not record.password_hash:
            violations.add("user.password_hash", "is required")
        _check_text(violations, "user.password_hash", record.password_hash)
        violations.raise_if_any()
        try:
            row = await self._store.create_user(
                NewUser(
                    id=user_id,
                    display_name=record.user.display_name,
                    role=record.user.role,
                    password_hash=record.password_hash,
                ),
                request.only_if_no_users,
                self._timeout(context),
            )
        except UsersExist as exc:
            raise failed_precondition(
                "a user exists already", subject="users", violation_type="USERS_EXIST"
            ) from exc
        if row is None:
            raise already_exists(USER, record.user.name)
        return metadata_pb2.CreateUserResponse(user=resources.user_record(row))

    async def GetUser(
        self, request: metadata_pb2.GetUserRequest, context: ServicerContext
    ) -> metadata_pb2.GetUserResponse:
        user_id = resources.user_id_of("user_id", request.user_id)
        row = await self._store.get_user(user_id, self._timeout(context))
        if row is None:
            raise not_found(USER, resources.user_name(user_id))
        return metadata_pb2.GetUserResponse(user=resources.user_record(row))

    async def ListUsers(
        self, request: metadata_pb2.ListUsersRequest, context: ServicerContext
    ) -> metadata_pb2.ListUsersResponse:
        size = pagination.page_size(request.page_size)
        after = pagination.after_key(request.page_token, "users", "")
        rows = await self._store.list_users(after, size + 1, self._timeout(context))
        page, token = pagination.next_page(rows, size, "users", "", "id")
        return metadata_pb2.ListUsersResponse(
            users=[resources.user_message(row) for row in page], next_page_token=token
        )

    async def DeleteUser(
        self, request: metadata_pb2.DeleteUserRequest, context: ServicerContext
    ) -> metadata_pb2.DeleteUserResponse:
        user_id = resources.user_id_of("user_id", request.user_id)
        if not await self._store.delete_user(user_id, self._timeout(context)):
            raise not_found(USER, resources.user_name(user_id))
        return metadata_pb2.DeleteUserResponse()

    async def SetPassword(
        self, request: metadata_pb2.SetPasswordRequest, context: ServicerContext
    ) -> metadata_pb2.SetPasswordResponse:
        violations = FieldViolations()
        _check_user_id(violations, "user_id", request.user_id)
        if not request.password_hash:
            violations.add("password_hash", "is required")
        _check_text(violations, "password_hash", request.password_hash)
        violations.raise_if_any()
        version = await self._store.set_password(
            request.user_id, request.password_hash, self._timeout(context)
        )
        if version is None:
            raise not_found(USER, resources.user_name(request.user_id))
        return metadata_pb2.SetPasswordResponse(token_version=version)

    # Refresh tokens --------------------------------------------------------------

    async def CreateRefreshToken(
        self, request: metadata_pb2.CreateRefreshTokenRequest, context: ServicerContext
    ) -> metadata_pb2.CreateRefreshTokenResponse:
        violations = FieldViolations()
        _check_hash(violations, "token_hash", request.token_hash)
        family_id = resources.parse_uuid(request.family_id)
        if family_id is None:
            violations.add("family_id", "must be a UUID")
        _check_user_id(violations, "user_id", request.user_id)
        expire_time = _required_time(violations, "expire_time", request, "expire_time")
        violations.raise_if_any()
        try:
            await self._store.create_refresh_token(
                request.token_hash,
                family_id or uuid.UUID(int=0),
                request.user_id,
                expire_time,
                self._timeout(context),
            )
        except Missing as exc:
            raise _missing(exc) from exc
        except RefreshTokenExists as exc:
            raise already_exists(REFRESH_TOKEN, "token_hash") from exc
        return metadata_pb2.CreateRefreshTokenResponse()

    async def RotateRefreshToken(
        self, request: metadata_pb2.RotateRefreshTokenRequest, context: ServicerContext
    ) -> metadata_pb2.RotateRefreshTokenResponse:
        violations = FieldViolations()
        _check_hash(violations, "token_hash", request.token_hash)
        _check_hash(violations, "new_token_hash", request.new_token_hash)
        if request.new_token_hash == request.token_hash:
            violations.add("new_token_hash", "must differ from token_hash")
        new_expire_time = _required_time(violations, "new_expire_time", request, "new_expire_time")
        violations.raise_if_any()
        try:
            rotation = await self._store.rotate_refresh_token(
                request.token_hash, request.new_token_hash, new_expire_time, self._timeout(context)
            )
        except RefreshTokenExists as exc:
            raise already_exists(REFRESH_TOKEN, "new_token_hash") from exc
        return metadata_pb2.RotateRefreshTokenResponse(
            result=ROTATE_RESULTS[rotation.outcome],
            user_id=rotation.user_id or "",
            family_id=str(rotation.family_id) if rotation.family_id else "",
        )

    async def RevokeRefreshToken(
        self, request: metadata_pb2.RevokeRefreshTokenRequest, context: ServicerContext
    ) -> metadata_pb2.RevokeRefreshTokenResponse:
        violations = FieldViolations()
        _check_hash(violations, "token_hash", request.token_hash)
        violations.raise_if_any()
        user_id = await self._store.revoke_refresh_token(request.token_hash, self._timeout(context))
        return metadata_pb2.RevokeRefreshTokenResponse(
            found=user_id is not None, user_id=user_id or ""
        )

    # Grants ----------------------------------------------------------------------

    async def SetGrant(
        self, request: metadata_pb2.SetGrantRequest, context: ServicerContext
    ) -> metadata_pb2.SetGrantResponse:
        violations = FieldViolations()
        _check_collection_id(violations, "collection_id", request.collection_id)
        _check_user_id(violations, "user_id", request.user_id)
        if request.role not in COLLECTION_ROLES:
            violations.add(
                "role",
                "must be COLLECTION_ROLE_OWNER, COLLECTION_ROLE_EDITOR or COLLECTION_ROLE_VIEWER",
            )
        violations.raise_if_any()
        try:
            row = await self._store.set_grant(
                request.collection_id, request.user_id, request.role, self._timeout(context)
            )
        except Missing as exc:
            raise _missing(exc) from exc
        return metadata_pb2.SetGrantResponse(grant=resources.grant_message(row))

    async def ListGrants(
        self, request: metadata_pb2.ListGrantsRequest, context: ServicerContext
    ) -> metadata_pb2.ListGrantsResponse:
        collection_id = resources.collection_id_of("collection_id", request.collection_id)
        size = pagination.page_size(request.page_size)
        after = pagination.after_key(request.page_token, "grants", collection_id)
        rows = await self._store.list_grants(collection_id, after, size + 1, self._timeout(context))
        if rows is None:
            raise not_found(COLLECTION, resources.collection_name(collection_id))
        page, token = pagination.next_page(rows, size, "grants", collection_id, "user_id")
        return metadata_pb2.ListGrantsResponse(
            grants=[resources.grant_message(row) for row in page], next_page_token=token
        )

    async def DeleteGrant(
        self, request: metadata_pb2.DeleteGrantRequest, context: ServicerContext
    ) -> metadata_pb2.DeleteGrantResponse:
        violations = FieldViolations()
        _check_collection_id(violations, "collection_id", request.collection_id)
        _check_user_id(violations, "user_id", request.user_id)
        violations.raise_if_any()
        if not await self._store.delete_grant(
            request.collection_id, request.user_id, self._timeout(context)
        ):
            raise not_found(GRANT, resources.grant_name(request.collection_id, request.user_id))
        return metadata_pb2.DeleteGrantResponse()

    # Sources ---------------------------------------------------------------------

    async def CreateSource(
        self, request: metadata_pb2.CreateSourceRequest, context: ServicerContext
    ) -> metadata_pb2.CreateSourceResponse:
        source = request.source
        violations = FieldViolations()
        source_id = _source_name(violations, "source.name", source.name)
        _check_path(violations, "source.path", source.path, root_allowed=False)
        _check_text(violations, "source.display_name", source.display_name)
        owner_id = None
        if source.owner:
            owner_id = resources.user_id_in(source.owner)
            if owner_id is None:
                violations.add(
                    "source.owner", f"must be users/{{user}} with an id of {resources.USER_ID_RULE}"
                )
        violations.raise_if_any()
        try:
            row = await self._store.create_source(
                NewSource(
                    id=source_id,
                    path=source.path,
                    display_name=source.display_name,
                    owner_user_id=owner_id,
                ),
                self._timeout(context),
            )
        except SourceExists as exc:
            if exc.taken == "path":
                raise _source_path_taken(source.path) from exc
            raise already_exists(SOURCE, source.name) from exc
        except Missing as exc:
            raise _missing(exc) from exc
        except PathTooLong as exc:
            raise invalid_argument({"source.path": "too long to be stored"}) from exc
        return metadata_pb2.CreateSourceResponse(source=resources.source_message(row))

    async def GetSource(
        self, request: metadata_pb2.GetSourceRequest, context: ServicerContext
    ) -> metadata_pb2.GetSourceResponse:
        violations = FieldViolations()
        source_id = _source_name(violations, "name", request.name)
        user_id = _optional_user_id(violations, "user_id", request.user_id)
        violations.raise_if_any()
        row = await self._store.get_source(source_id, user_id, self._timeout(context))
        if row is None:
            raise not_found(SOURCE, request.name)
        return metadata_pb2.GetSourceResponse(source=resources.source_message(row))

    async def FindSourceForPath(
        self, request: metadata_pb2.FindSourceForPathRequest, context: ServicerContext
    ) -> metadata_pb2.FindSourceForPathResponse:
        violations = FieldViolations()
        _check_path(violations, "path", request.path, root_allowed=True)
        user_id = _optional_user_id(violations, "user_id", request.user_id)
        violations.raise_if_any()
        row = await self._store.find_source_for_path(request.path, user_id, self._timeout(context))
        if row is None:
            raise not_found(SOURCE, request.path)
        return metadata_pb2.FindSourceForPathResponse(source=resources.source_message(row))

    async def ListSources(
        self, request: metadata_pb2.ListSourcesRequest, context: ServicerContext
    ) -> metadata_pb2.ListSourcesResponse:
        size = pagination.page_size(request.page_size)
        violations = FieldViolations()
        user_id = _optional_user_id(violations, "restrict_user_id", request.restrict_user_id)
        violations.raise_if_any()
        # A token continues only the listing it came from (all, or one user's).
        listing = request.restrict_user_id
        after = pagination.after_key(request.page_token, "sources", listing)
        rows = await self._store.list_sources(after, size + 1, self._timeout(context), user_id)
        page, token = pagination.next_page(rows, size, "sources", listing, "id")
        return metadata_pb2.ListSourcesResponse(
            sources=[resources.source_message(row) for row in page], next_page_token=token
        )

    async def DeleteSource(
        self, request: metadata_pb2.DeleteSourceRequest, context: ServicerContext
    ) -> metadata_pb2.DeleteSourceResponse:
        source_id = resources.parse_source_name("name", request.name)
        if not await self._store.delete_source(source_id, self._timeout(context)):
            raise not_found(SOURCE, request.name)
        return metadata_pb2.DeleteSourceResponse()

    async def SetSourceGrant(
        self, request: metadata_pb2.SetSourceGrantRequest, context: ServicerContext
    ) -> metadata_pb2.SetSourceGrantResponse:
        violations = FieldViolations()
        _check_source_id(violations, "source_id", request.source_id)
        _check_user_id(violations, "user_id", request.user_id)
        if request.role not in SOURCE_ROLES:
            violations.add("role", "must be SOURCE_ROLE_OWNER or SOURCE_ROLE_READER")
        violations.raise_if_any()
        try:
            row = await self._store.set_source_grant(
                request.source_id, request.user_id, request.role, self._timeout(context)
            )
        except Missing as exc:
            raise _missing(exc) from exc
        return metadata_pb2.SetSourceGrantResponse(grant=resources.source_grant_message(row))

    async def ListSourceGrants(
        self, request: metadata_pb2.ListSourceGrantsRequest, context: ServicerContext
    ) -> metadata_pb2.ListSourceGrantsResponse:
        source_id = resources.source_id_of("source_id", request.source_id)
        size = pagination.page_size(request.page_size)
        after = pagination.after_key(request.page_token, "source_grants", source_id)
        rows = await self._store.list_source_grants(
            source_id, after, size + 1, self._timeout(context)
        )
        if rows is None:
            raise not_found(SOURCE, resources.source_name(source_id))
        page, token = pagination.next_page(rows, size, "source_grants", source_id, "user_id")
        return metadata_pb2.ListSourceGrantsResponse(
            grants=[resources.source_grant_message(row) for row in page], next_page_token=token
        )

    async def DeleteSourceGrant(
        self, request: metadata_pb2.DeleteSourceGrantRequest, context: ServicerContext
    ) -> metadata_pb2.DeleteSourceGrantResponse:
        violations = FieldViolations()
        _check_source_id(violations, "source_id", request.source_id)
        _check_user_id(violations, "user_id", request.user_id)
        violations.raise_if_any()
        if not await self._store.delete_source_grant(
            request.source_id, request.user_id, self._timeout(context)
        ):
            raise not_found(
                SOURCE_GRANT, resources.source_grant_name(request.source_id, request.user_id)
            )
        return metadata_pb2.DeleteSourceGrantResponse()

    # API keys --------------------------------------------------------------------

    async def CreateApiKey(
        self, request: metadata_pb2.CreateApiKeyRequest, context: ServicerContext
    ) -> metadata_pb2.CreateApiKeyResponse:
        record = request.api_key
        key = record.api_key
        violations = FieldViolations()
        name_prefix, _, key_id = key.name.partition("/")
        if name_prefix != "apiKeys" or not resources.is_api_key_id(key_id):
            violations.add(
                "api_key.api_key.name",
                f"must be apiKeys/{{api_key}} with an id of {resources.API_KEY_ID_RULE}",
            )
        owner_prefix, _, owner_id = key.owner.partition("/")
        if owner_prefix != "users" or not resources.is_user_id(owner_id):
            violations.add(
                "api_key.api_key.owner",
                f"must be users/{{user}} with an id of {resources.USER_ID_RULE}",
            )
        _check_text(violations, "api_key.api_key.display_name", key.display_name)
        _check_hash(violations, "api_key.secret_hash", record.secret_hash)
        collections: list[str] = []
        if not key.collections:
            violations.add("api_key.api_key.collections", "must name at least one collection")
        elif len(key.collections) > MAX_API_KEY_COLLECTIONS:
            violations.add(
                "api_key.api_key.collections", f"at most {MAX_API_KEY_COLLECTIONS} collections"
            )
        for i, name in enumerate(key.collections):
            prefix, _, collection_id = name.partition("/")
            if prefix != "collections" or not resources.is_collection_id(collection_id):
                violations.add(
                    f"api_key.api_key.collections[{i}]",
                    "must be collections/{collection} with an id of "
                    + resources.COLLECTION_ID_RULE,
                )
            elif collection_id not in collections:
                collections.append(collection_id)
        verbs: list[int] = []
        if not key.verbs:
            violations.add("api_key.api_key.verbs", "must name at least one verb")
        for i, verb in enumerate(key.verbs):
            if verb not in API_KEY_VERBS:
                violations.add(f"api_key.api_key.verbs[{i}]", "is not a known ApiKeyVerb")
            elif verb not in verbs:
                verbs.append(verb)
        expire_time = None
        if key.HasField("expire_time"):
            expire_time = _time(violations, "api_key.api_key.expire_time", key.expire_time)
        violations.raise_if_any()
        try:
            row = await self._store.create_api_key(
                NewApiKey(
                    id=key_id,
                    user_id=owner_id,
                    display_name=key.display_name,
                    secret_hash=record.secret_hash,
                    collections=collections,
                    verbs=verbs,
                    expire_time=expire_time,
                ),
                self._timeout(context),
            )
        except Missing as exc:
            raise _missing(exc) from exc
        if row is None:
            raise already_exists(API_KEY, key.name)
        return metadata_pb2.CreateApiKeyResponse(api_key=resources.api_key_record(row))

    async def ListApiKeys(
        self, request: metadata_pb2.ListApiKeysRequest, context: ServicerContext
    ) -> metadata_pb2.ListApiKeysResponse:
        user_id = resources.user_id_of("user_id", request.user_id)
        size = pagination.page_size(request.page_size)
        after = pagination.after_key(request.page_token, "api_keys", user_id)
        rows = await self._store.list_api_keys(user_id, after, size + 1, self._timeout(context))
        if rows is None:
            raise not_found(USER, resources.user_name(user_id))
        page, token = pagination.next_page(rows, size, "api_keys", user_id, "id")
        return metadata_pb2.ListApiKeysResponse(
            api_keys=[resources.api_key_message(row) for row in page], next_page_token=token
        )

    async def DeleteApiKey(
        self, request: metadata_pb2.DeleteApiKeyRequest, context: ServicerContext
    ) -> metadata_pb2.DeleteApiKeyResponse:
        violations = FieldViolations()
        _check_user_id(violations, "user_id", request.user_id)
        if not resources.is_api_key_id(request.api_key_id):
            violations.add("api_key_id", f"must be an API key id: {resources.API_KEY_ID_RULE}")
        violations.raise_if_any()
        if not await self._store.delete_api_key(
            request.user_id, request.api_key_id, self._timeout(context)
        ):
            raise not_found(API_KEY, resources.api_key_name(request.api_key_id))
        return metadata_pb2.DeleteApiKeyResponse()

    # Principals ------------------------------------------------------------------

    async def ResolvePrincipal(
        self, request: metadata_pb2.ResolvePrincipalRequest, context: ServicerContext
    ) -> metadata_pb2.ResolvePrincipalResponse:
        principal: Principal | None
        which = request.WhichOneof("principal")
        if which == "user_id":
            user_id = resources.user_id_of("user_id", request.user_id)
            session_id = None
            if request.session_id:
                session_id = resources.parse_uuid(request.session_id)
                if session_id is None:
                    raise invalid_argument({"session_id": "must be a UUID"})
            principal = await self._store.resolve_user(user_id, session_id, self._timeout(context))
            if principal is None:
                raise not_found(USER, resources.user_name(user_id))
        elif which == "api_key_id":
            key_id = resources.api_key_id_of("api_key_id", request.api_key_id)
            principal = await self._store.resolve_api_key(key_id, self._timeout(context))
            if principal is None:
                raise not_found(API_KEY, resources.api_key_name(key_id))
        else:
            raise invalid_argument({"principal": "set user_id or api_key_id"})
        response = metadata_pb2.ResolvePrincipalResponse(
            user=resources.user_record(principal.user), session_revoked=principal.session_revoked
        )
        for collection_id, role in principal.grants.items():
            response.grants[collection_id] = cast(grant_pb2.CollectionRole, role)
        if principal.api_key is not None:
            response.api_key.CopyFrom(resources.api_key_record(principal.api_key))
        return response


def _restriction(
    request: metadata_pb2.ListCollectionsRequest | metadata_pb2.ListOperationsRequest,
) -> list[str] | None:
    """The collection ids a listing is limited to; None when it is not."""
    if not request.restrict_collections:
        return None
    violations = FieldViolations()
    for i, collection_id in enumerate(request.collection_ids):
        if not resources.is_collection_id(collection_id):
            violations.add(
                f"collection_ids[{i}]", f"must be a collection id: {resources.COLLECTION_ID_RULE}"
            )
    violations.raise_if_any()
    return list(set(request.collection_ids))


MAX_FILTER_CHARS = 4096


def _document_filters(request: metadata_pb2.ListDocumentsRequest) -> DocumentFilters:
    """The request's optional filters, checked; unset ones are None."""
    violations = FieldViolations()
    for field in ("path_prefix", "mime_type"):
        value: str = getattr(request, field)
        _check_text(violations, field, value)
        if len(value) > MAX_FILTER_CHARS:
            violations.add(field, f"at most {MAX_FILTER_CHARS} characters")
    after = before = None
    if request.HasField("modified_after"):
        after = _time(violations, "modified_after", request.modified_after)
    if request.HasField("modified_before"):
        before = _time(violations, "modified_before", request.modified_before)
    if after is not None and before is not None and after >= before:
        violations.add("modified_before", "must be later than modified_after")
    violations.raise_if_any()
    return DocumentFilters(
        path_prefix=request.path_prefix or None,
        mime_type=request.mime_type or None,
        modified_after=after,
        modified_before=before,
    )


def _stored_error(error: operation_pb2.DocumentError) -> dict[str, Any]:
    return {"source_path": error.source_path, "reason": error.reason, "attempts": error.attempts}


def _source_path_taken(path: str) -> ServiceError:
    """ALREADY_EXISTS for a path registered under another id (which is not said)."""
    info = error_details_pb2.ResourceInfo(
        resource_type=SOURCE,
        resource_name=bounded(path),
        description="a source with this path already exists",
    )
    return ServiceError(
        grpc.StatusCode.ALREADY_EXISTS,
        f"a source with path {bounded(path)} already exists",
        [info],
    )


def _operation_done(name: str, state: int) -> ServiceError:
    state_name = operation_pb2.OperationState.Name(state).removeprefix("OPERATION_STATE_")
    return failed_precondition(
        f"the operation is done ({state_name}); its state cannot change",
        subject=name,
        violation_type="OPERATION_DONE",
    )
