"""The shared service token: internal services answer only callers that know it.

With `SERVICE_TOKEN` set, a server built with `server_interceptors()` rejects
every call whose metadata lacks `x-semantik-service-token` equal to it (a
constant-time comparison) with UNAUTHENTICATED, whatever the method, known or
not. `grpc.health.v1.Health` stays open: probes and load balancers carry no
token. Channels from `servicekit.channels.open_channel` attach the token to
every call when the same variable is set, so a caller needs no code of its own.

Without `SERVICE_TOKEN` nothing is checked or sent (a service run alone on a
developer's machine). With `SEMANTIK_ENV=production` that is refused:
`require_service_token` stops the process before it listens.
"""

from __future__ import annotations

import hmac
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from servicekit.errors import unauthenticated
from servicekit.grpc_types import ServicerContext

TOKEN_ENV = "SERVICE_TOKEN"
ENVIRONMENT_ENV = "SEMANTIK_ENV"
METADATA_KEY = "x-semantik-service-token"
# Probes ask for health without credentials.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})
ERROR_REASON = "SERVICE_TOKEN_INVALID"


def service_token() -> str | None:
    """`SERVICE_TOKEN`, or None when it is unset or blank."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def production() -> bool:
    return os.environ.get(ENVIRONMENT_ENV, "").strip().lower() == "production"


def require_service_token(component: str) -> None:
    """Exits (status 2, a message on stderr) in production without `SERVICE_TOKEN`.

    Called at start-up by every service that receives internal calls or makes
    them, before it listens.
    """
    if production() and service_token() is None:
        print(
            f"{component}: refusing to start: {ENVIRONMENT_ENV}=production requires "
            f"{TOKEN_ENV} (the shared secret of internal calls) to be set",
            file=sys.stderr,
        )
        sys.exit(2)


def _matches(metadata: Sequence[tuple[str, str | bytes]] | None, expected: bytes) -> bool:
    found = False
    for key, value in metadata or ():
        if key.lower() != METADATA_KEY:
            continue
        given = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
        # No early exit: every candidate is compared, in constant time each.
        found |= hmac.compare_digest(given, expected)
    return found


def _service_of(method: str) -> str:
    # "/package.Service/Method"
    return method.lstrip("/").split("/", 1)[0]


_UNAUTHENTICATED = unauthenticated("missing or invalid service token", ERROR_REASON)


async def _reject(_request: Any, context: ServicerContext) -> None:
    await context.abort_with_status(_UNAUTHENTICATED.to_grpc_status())


def _rejecting(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:
    """A handler of the same kind that answers UNAUTHENTICATED without reading the request.

    The request is left as raw bytes (no deserializer), so a caller without the
    token learns nothing from how its payload would have been parsed.
    """
    if handler is not None and handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_reject)
    if handler is not None and handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_reject)
    if handler is not None and handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(_reject)
    return grpc.unary_unary_rpc_method_handler(_reject)


class ServiceTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Rejects calls without the service token, except to `open_services`."""

    def __init__(self, token: str, open_services: frozenset[str] = OPEN_SERVICES) -> None:
        if not token:
            raise ValueError("the service token must not be empty")
        self._expected = token.encode("utf-8")
        self._open = open_services

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method or ""
        if _service_of(method) in self._open or _matches(
            handler_call_details.invocation_metadata, self._expected
        ):
            return await continuation(handler_call_details)
        # Unknown methods are refused the same way: no caller without the
        # token learns which methods exist.
        return _rejecting(await continuation(handler_call_details))


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The interceptor for `run_server(interceptors=...)`, or none without `SERVICE_TOKEN`."""
    token = service_token()
    return [] if token is None else [ServiceTokenInterceptor(token)]


def _with_token(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata()
    for key, value in details.metadata or ():
        if key.lower() != METADATA_KEY:
            metadata.add(key, value)
    metadata.add(METADATA_KEY, token)
    return details._replace(metadata=metadata)


class _TokenUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._token), request)


class _TokenUnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self._token), request)


class _TokenStreamUnary(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_stream_unary(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(_with_token(details, self._token), request_iterator)


class _TokenStreamStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_stream_stream(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(_with_token(details, self._token), request_iterator)


def client_interceptors(token: str | None = None) -> list[grpc.aio.ClientInterceptor]:
    """One interceptor per call kind (grpc.aio files each under one kind only).

    `token` defaults to `SERVICE_TOKEN`; without one, none.
    """
    token = token if token is not None else service_token()
    if not token:
        return []
    return [
        _TokenUnaryUnary(token),
        _TokenUnaryStream(token),
        _TokenStreamUnary(token),
        _TokenStreamStream(token),
    ]
