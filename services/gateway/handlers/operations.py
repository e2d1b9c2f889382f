"""OperationService (proto/semantik/v1/operation.proto)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import operation_pb2, operation_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations, failed_precondition
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.imports import folder_to_retry, queue_import
from services.gateway.security import principal

Context = ServicerContext

# How often WatchOperation reads the operation; the indexer reports progress
# about three times a second.
WATCH_POLL_S = 0.25


class OperationHandler(operation_pb2_grpc.OperationServiceServicer):  # type: ignore[misc]
    def __init__(
        self, downstream: Downstreams, default_timeout_s: float, watch_poll_s: float = WATCH_POLL_S
    ) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s
        self._watch_poll_s = watch_poll_s

    async def GetOperation(
        self, request: operation_pb2.GetOperationRequest, context: Context
    ) -> operation_pb2.Operation:
        violations = FieldViolations()
        validation.check_operation_name(request.name, "name", violations)
        violations.raise_if_any()
        response = await self._d.metadata.GetOperation(
            metadata_pb2.GetOperationRequest(name=request.name),
            timeout=remaining(context, self._timeout_s),
        )
        return response.operation

    async def ListOperations(
        self, request: operation_pb2.ListOperationsRequest, context: Context
    ) -> operation_pb2.ListOperationsResponse:
        violations = FieldViolations()
        validation.check_page(request.page_size, violations)
        violations.raise_if_any()
        response = await self._d.metadata.ListOperations(
            metadata_pb2.ListOperationsRequest(
                page_size=request.page_size,
                page_token=request.page_token,
                **principal.listing_scope(),
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return operation_pb2.ListOperationsResponse(
            operations=response.operations, next_page_token=response.next_page_token
        )

    async def WatchOperation(
        self, request: operation_pb2.WatchOperationRequest, context: Context
    ) -> AsyncIterator[operation_pb2.Operation]:
        violations = FieldViolations()
        validation.check_operation_name(request.name, "name", violations)
        violations.raise_if_any()
        # Metadata is the record, so the stream polls it: every gateway
        # replica can serve any watch, and a restarted worker is followed
        # without any registration. Sent only when something changed.
        last: operation_pb2.Operation | None = None
        while True:
            operation = (
                await self._d.metadata.GetOperation(
                    metadata_pb2.GetOperationRequest(name=request.name),
                    timeout=remaining(context, self._timeout_s),
                )
            ).operation
            if operation != last:
                yield operation
                last = operation
            if operation.done:
                return
            await asyncio.sleep(self._watch_poll_s)

    async def CancelOperation(
        self, request: operation_pb2.CancelOperationRequest, context: Context
    ) -> operation_pb2.Operation:
        violations = FieldViolations()
        validation.check_operation_name(request.name, "name", violations)
        violations.raise_if_any()
        response = await self._d.metadata.CancelOperation(
            metadata_pb2.CancelOperationRequest(name=request.name),
            timeout=remaining(context, self._timeout_s),
        )
        return response.operation

    async def RetryOperation(
        self, request: operation_pb2.RetryOperationRequest, context: Context
    ) -> operation_pb2.Operation:
        violations = FieldViolations()
        validation.check_operation_name(request.name, "name", violations)
        violations.raise_if_any()
        original = (
            await self._d.metadata.GetOperation(
                metadata_pb2.GetOperationRequest(name=request.name),
                timeout=remaining(context, self._timeout_s),
            )
        ).operation
        if not original.done:
            raise failed_precondition(
                "the operation is still running; cancel it or wait for it to finish",
                subject=request.name,
                violation_type="OPERATION_NOT_DONE",
            )
        retry_paths: list[str] = []
        if original.state == operation_pb2.OPERATION_STATE_SUCCEEDED:
            # Only what failed; a FAILED or CANCELLED run is done again whole
            # (a sync: what it indexed is unchanged and costs nothing).
            failed = {e.source_path for e in [*original.document_errors, *original.dead_letters]}
            if not failed:
                raise failed_precondition(
                    "the operation has no failed documents to retry",
                    subject=request.name,
                    violation_type="NOTHING_TO_RETRY",
                )
            retry_paths = sorted(failed)
        timeout_s = remaining(context, self._timeout_s)
        # The retrier needs the source as much as an importer does.
        folder = await folder_to_retry(self._d, principal.current(), original, timeout_s)
        return await queue_import(
            self._d,
            operation_pb2.Operation(
                kind=operation_pb2.OPERATION_KIND_RETRY_DOCUMENTS,
                collection=original.collection,
                include_globs=original.include_globs,
                exclude_globs=original.exclude_globs,
                max_file_bytes=original.max_file_bytes,
                retry_of=original.name,
            ),
            folder,
            timeout_s,
            retry_paths=retry_paths,
        )
