"""OperationService (proto/semantik/v1/operation.proto)."""

from __future__ import annotations

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import operation_pb2, operation_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.security import principal

Context = ServicerContext


class OperationHandler(operation_pb2_grpc.OperationServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

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
