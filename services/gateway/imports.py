"""Queueing an import: the one path from a public request to an indexer job.

ImportDocuments and RetryOperation both come here, so:
- the folder read is always inside a registered source the caller may use
  (`folder_to_import`, `folder_to_retry`); only admins name a server path,
  which is registered as a source on the way;
- an operation is recorded only for a folder the indexer accepted (AIP-163
  validate_only first), always with the collection's own chunking;
- it never stays PENDING when its job could not be queued.

The indexer resolves paths (it is the process that reads them) and checks
the folder against the source's root again when the job starts.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from semantik.internal.v1 import indexer_pb2, metadata_pb2
from semantik.v1 import document_pb2, operation_pb2, source_pb2
from servicekit.errors import (
    failed_precondition,
    field_violations,
    invalid_argument,
    permission_denied,
)
from services.gateway.downstream import Downstreams
from services.gateway.security import source_access
from services.gateway.security.principal import Permission, Principal

ADMIN_PATHS_ONLY = (
    "a server path (source_path) needs the admin role: name a source you were "
    "granted (source) and a folder inside it (path)"
)
MAX_GENERATED_ID = 54
# Retries of retries followed back to the operation they began with.
MAX_RETRY_CHAIN = 32


@dataclass(frozen=True)
class ImportFolder:
    """A folder to import: inside `source`, symlinks resolved."""

    source: source_pb2.Source
    path: str


def generated_source_id(path: str) -> str:
    """An id for a folder registered on the way: its name, made an id, and
    a hash of the whole path so that two `docs` folders differ."""
    slug = re.sub(r"[^a-z0-9]+", "-", posixpath.basename(path).lower()).strip("-")
    if not slug[:1].isalpha():
        slug = f"src-{slug}".rstrip("-")
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{slug[:MAX_GENERATED_ID].rstrip('-')}-{digest}"


async def resolve_folder(
    downstream: Downstreams, root: str, path: str, timeout_s: float
) -> indexer_pb2.ResolveSourcePathResponse | dict[str, str]:
    """The indexer's canonical (root, path), or its refusal: the reason by
    field (`root` or `path`)."""
    try:
        response: indexer_pb2.ResolveSourcePathResponse = (
            await downstream.indexer.ResolveSourcePath(
                indexer_pb2.ResolveSourcePathRequest(root=root, path=path), timeout=timeout_s
            )
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        return field_violations(exc) or {"path": exc.details() or "refused"}
    return response


def root_refusal(refusal: dict[str, str]) -> str:
    return refusal.get("root") or next(iter(refusal.values()))


async def _inside(
    downstream: Downstreams, source: source_pb2.Source, path: str, timeout_s: float
) -> ImportFolder:
    resolved = await resolve_folder(downstream, source.path, path, timeout_s)
    if isinstance(resolved, dict):
        if "root" in resolved:
            raise failed_precondition(
                f"{source.name}: its folder cannot be read now: {resolved['root']}",
                subject=source.name,
                violation_type="SOURCE_UNREADABLE",
            )
        raise invalid_argument({"path": resolved.get("path", "refused")})
    return ImportFolder(source, resolved.path)


async def _registered(
    downstream: Downstreams, caller: Principal, server_path: str, timeout_s: float
) -> ImportFolder:
    """An admin's server path: read through the registered source holding
    it, or registered now as a source of the admin's."""
    resolved = await resolve_folder(downstream, server_path, "", timeout_s)
    if isinstance(resolved, dict):
        raise invalid_argument({"source_path": root_refusal(resolved)})
    for attempt in range(2):
        try:
            found = await downstream.metadata.FindSourceForPath(
                metadata_pb2.FindSourceForPathRequest(path=resolved.path, user_id=caller.user_id),
                timeout=timeout_s,
            )
            return ImportFolder(source_access.visible(caller, found.source), resolved.path)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND or attempt:
                raise
        new = source_pb2.Source(
            name=f"sources/{generated_source_id(resolved.path)}",
            path=resolved.path,
            display_name=posixpath.basename(resolved.path),
            owner=f"users/{caller.user_id}",
        )
        try:
            created = await downstream.metadata.CreateSource(
                metadata_pb2.CreateSourceRequest(source=new), timeout=timeout_s
            )
            return ImportFolder(source_access.visible(caller, created.source), resolved.path)
        except grpc.aio.AioRpcError as exc:
            # Registered by a concurrent import meanwhile: found on the next round.
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
    raise AssertionError("unreachable")  # the second round returns or raises


def upload_folder(folder: str) -> ImportFolder:
    """A collection's upload area (the indexer's real path): no registered
    source; those who may write the collection may import it."""
    return ImportFolder(source_pb2.Source(path=folder), folder)


async def _is_upload(
    downstream: Downstreams, operation: operation_pb2.Operation, timeout_s: float
) -> bool:
    """Whether `operation` indexes an upload area: an upload, or a retry of
    one (followed back through `retry_of`)."""
    for _ in range(MAX_RETRY_CHAIN):
        if operation.kind != operation_pb2.OPERATION_KIND_RETRY_DOCUMENTS:
            return operation.kind == operation_pb2.OPERATION_KIND_UPLOAD_DOCUMENTS
        operation = (
            await downstream.metadata.GetOperation(
                metadata_pb2.GetOperationRequest(name=operation.retry_of), timeout=timeout_s
            )
        ).operation
    return False


def _admin_path(caller: Principal) -> None:
    if not caller.is_admin or caller.key is not None:
        raise permission_denied(ADMIN_PATHS_ONLY)


async def folder_to_import(
    downstream: Downstreams,
    caller: Principal,
    request: document_pb2.ImportDocumentsRequest,
    timeout_s: float,
) -> ImportFolder:
    """The folder an ImportDocuments request may read (shape already checked)."""
    if request.source_path:
        _admin_path(caller)
        return await _registered(downstream, caller, request.source_path, timeout_s)
    source = await source_access.require(
        downstream.metadata,
        caller,
        request.source,
        Permission.READ,
        timeout_s=timeout_s,
        rpc="ImportDocuments",
    )
    return await _inside(downstream, source, request.path, timeout_s)


async def folder_to_retry(
    downstream: Downstreams,
    caller: Principal,
    original: operation_pb2.Operation,
    timeout_s: float,
) -> ImportFolder:
    """The folder of `original`, if the caller may still read its source."""
    if not original.source and await _is_upload(downstream, original, timeout_s):
        return upload_folder(original.source_path)
    if not original.source:
        # Recorded before sources existed and not migrated: admins only.
        _admin_path(caller)
        return await _registered(downstream, caller, original.source_path, timeout_s)
    source = await source_access.require(
        downstream.metadata,
        caller,
        original.source,
        Permission.READ,
        timeout_s=timeout_s,
        rpc="RetryOperation",
    )
    relative = posixpath.relpath(original.source_path, source.path)
    return await _inside(downstream, source, "" if relative == "." else relative, timeout_s)


async def queue_import(
    downstream: Downstreams,
    operation: operation_pb2.Operation,
    folder: ImportFolder,
    timeout_s: float,
    retry_paths: Sequence[str] = (),
) -> operation_pb2.Operation:
    """Records `operation` (kind, collection, globs, size limit and
    `retry_of` as given; source and folder from `folder`) and queues its
    job; returns it as recorded."""
    operation.source = folder.source.name
    operation.source_path = folder.path
    collection = (
        await downstream.metadata.GetCollection(
            metadata_pb2.GetCollectionRequest(name=operation.collection), timeout=timeout_s
        )
    ).collection
    start = indexer_pb2.StartImportRequest(
        collection_id=operation.collection.removeprefix("collections/"),
        source_path=folder.path,
        source_root=folder.source.path,
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
