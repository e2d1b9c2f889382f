"""Canonical gRPC errors with `google.rpc` details.

Handlers raise `ServiceError` (or one of the helpers below); the server
interceptor in `servicekit.server` turns it into a status with
`grpc-status-details-bin`, so clients and Envoy see the code, message and
details. Bad input is INVALID_ARGUMENT with a BadRequest naming each field.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


class ServiceError(Exception):
    """An error that maps to one canonical status with details."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Iterable[object] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details)

    def to_status(self) -> status_pb2.Status:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details:
            status.details.add().Pack(detail)  # type: ignore[arg-type]
        return status

    def to_grpc_status(self) -> grpc.Status:
        return rpc_status.to_status(self.to_status())


# Error text echoes what the caller sent; a bounded echo keeps the status
# within gRPC's metadata limits (16 KiB by default) for any input.
MAX_ECHO_CHARS = 240
MAX_VIOLATIONS = 20


def bounded(text: str) -> str:
    """`text`, cut to MAX_ECHO_CHARS with a marker when longer."""
    if len(text) <= MAX_ECHO_CHARS:
        return text
    return f"{text[:MAX_ECHO_CHARS]}... ({len(text)} characters)"


def invalid_argument(violations: dict[str, str]) -> ServiceError:
    """INVALID_ARGUMENT with one BadRequest field violation per field."""
    fields = list(violations.items())
    shown = {bounded(field): bounded(text) for field, text in fields[:MAX_VIOLATIONS]}
    if len(fields) > MAX_VIOLATIONS:
        shown["..."] = f"{len(fields) - MAX_VIOLATIONS} more fields are invalid"
    violations = shown
    request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations.items()
        ]
    )
    summary = "; ".join(f"{field}: {description}" for field, description in violations.items())
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid argument: {summary}", [request])


def not_found(resource_type: str, resource_name: str) -> ServiceError:
    resource_name = bounded(resource_name)
    info = error_details_pb2.ResourceInfo(
        resource_type=resource_type, resource_name=resource_name, description="not found"
    )
    return ServiceError(grpc.StatusCode.NOT_FOUND, f"{resource_name} not found", [info])


def already_exists(resource_type: str, resource_name: str) -> ServiceError:
    resource_name = bounded(resource_name)
    info = error_details_pb2.ResourceInfo(
        resource_type=resource_type, resource_name=resource_name, description="already exists"
    )
    return ServiceError(grpc.StatusCode.ALREADY_EXISTS, f"{resource_name} already exists", [info])


def failed_precondition(message: str, subject: str = "", violation_type: str = "") -> ServiceError:
    failure = error_details_pb2.PreconditionFailure(
        violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=violation_type, subject=subject, description=message
            )
        ]
    )
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, message, [failure])


ERROR_DOMAIN = "semantik.io"


def unauthenticated(message: str, reason: str = "UNAUTHENTICATED") -> ServiceError:
    """No valid credentials; `reason` is a machine-readable ErrorInfo reason."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    return ServiceError(grpc.StatusCode.UNAUTHENTICATED, message, [info])


def permission_denied(message: str, reason: str = "PERMISSION_DENIED") -> ServiceError:
    """Valid credentials that do not allow the call."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    return ServiceError(grpc.StatusCode.PERMISSION_DENIED, message, [info])


def unavailable(message: str, retry_after_s: float = 1.0) -> ServiceError:
    seconds = int(retry_after_s)
    delay = duration_pb2.Duration(seconds=seconds, nanos=int((retry_after_s - seconds) * 1e9))
    return ServiceError(
        grpc.StatusCode.UNAVAILABLE, message, [error_details_pb2.RetryInfo(retry_delay=delay)]
    )


def resource_exhausted(message: str, retry_after_s: float) -> ServiceError:
    seconds = int(retry_after_s)
    delay = duration_pb2.Duration(seconds=seconds, nanos=int((retry_after_s - seconds) * 1e9))
    return ServiceError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        message,
        [error_details_pb2.RetryInfo(retry_delay=delay)],
    )


def from_downstream(error: grpc.aio.AioRpcError) -> ServiceError:
    """Pass a downstream service's status on unchanged, details included.

    A downstream deadline or cancellation keeps its code, so callers see why
    their request stopped rather than a generic failure.
    """
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    code = error.code()
    if status is None:
        return ServiceError(code, error.details() or code.name)
    details: list[object] = []
    for any_detail in status.details:
        for cls in _DETAIL_TYPES:
            if any_detail.Is(cls.DESCRIPTOR):
                message = cls()
                any_detail.Unpack(message)
                details.append(message)
    return ServiceError(code, status.message, details)


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """{field: description} of the google.rpc.BadRequest a downstream
    error carries (empty when it carries none)."""
    return {
        violation.field: violation.description
        for detail in from_downstream(error).details
        if isinstance(detail, error_details_pb2.BadRequest)
        for violation in detail.field_violations
    }


_DETAIL_TYPES = (
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.RetryInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.QuotaFailure,
)

# The numeric codes of grpc.StatusCode and google.rpc.Code agree; this keeps
# the import used by type checkers that look for the enum's module.
assert grpc.StatusCode.INVALID_ARGUMENT.value[0] == code_pb2.INVALID_ARGUMENT


class FieldViolations:
    """Collects every bad field of a request, so one answer names them all."""

    def __init__(self) -> None:
        self._violations: dict[str, str] = {}

    def add(self, field: str, description: str) -> None:
        self._violations.setdefault(field, description)

    def __bool__(self) -> bool:
        return bool(self._violations)

    def raise_if_any(self) -> None:
        if self._violations:
            raise invalid_argument(self._violations)
