"""grpc.aio server bootstrap shared by every service.

`run_server` owns the parts that are the same everywhere: interceptors
(telemetry, error mapping), `grpc.health.v1`, server reflection, the readiness
loop, and graceful shutdown: on SIGTERM or SIGINT health goes NOT_SERVING
first, keeps answering for `SHUTDOWN_DELAY_S` (default 0) so balancers see
it, then in-flight calls drain for `grace_s`, then `on_shutdown` closes the
service's resources.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from servicekit import telemetry
from servicekit.channels import CHANNEL_OPTIONS
from servicekit.config import env_float
from servicekit.errors import ServiceError, from_downstream, invalid_argument
from servicekit.grpc_types import ServicerContext
from servicekit.readiness import Readiness, ReadinessCheck

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """One gRPC service: its full name and how to add its handler."""

    full_name: str
    add_to_server: Callable[[grpc.aio.Server], None]


def configure_logging(component: str) -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s {component} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _status_of(exc: BaseException) -> ServiceError | None:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, grpc.aio.AioRpcError):
        return from_downstream(exc)
    return None


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Maps `ServiceError` and downstream `AioRpcError` to canonical statuses.

    Anything else is a bug: it is logged with its traceback and answered as
    INTERNAL without leaking internals to the caller.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        deserializer = _tolerant(handler.request_deserializer)

        async def fail(context: ServicerContext, exc: Exception) -> None:
            error = _status_of(exc)
            if error is None:
                log.exception("unhandled error in %s", method, exc_info=exc)
                error = ServiceError(grpc.StatusCode.INTERNAL, "internal error")
            await context.abort_with_status(error.to_grpc_status())

        if handler.unary_unary or handler.stream_unary:
            inner_unary = handler.unary_unary or handler.stream_unary

            async def unary(request: Any, context: ServicerContext) -> Any:
                try:
                    if handler.stream_unary:
                        request = _checked(request)
                    else:
                        _raise_if_malformed(request)
                    return await inner_unary(request, context)
                except Exception as exc:
                    if _is_abort(exc):
                        raise
                    await fail(context, exc)

            factory = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary
                else grpc.stream_unary_rpc_method_handler
            )
            return factory(
                unary,
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )

        inner_stream = handler.unary_stream or handler.stream_stream

        async def streaming(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
            try:
                if handler.stream_stream:
                    request = _checked(request)
                else:
                    _raise_if_malformed(request)
                result = inner_stream(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:
                    # A handler that writes with context.write() and returns
                    # (grpc.health.v1 Watch) is a coroutine, not a generator.
                    await result
            except Exception as exc:
                if _is_abort(exc):
                    raise
                await fail(context, exc)

        factory = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream
            else grpc.stream_stream_rpc_method_handler
        )
        return factory(
            streaming,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )


class MalformedRequest:
    """Stands in for a request message whose bytes did not parse."""

    def __init__(self, message_type: str, error: Exception) -> None:
        self.message_type = message_type
        self.error = error


def _tolerant(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """A deserializer that returns MalformedRequest instead of raising.

    grpc.aio answers a failed parse as UNKNOWN with the exception's text;
    bytes that are not the request message are the caller's error, so the
    handler wrapper turns the stand-in into INVALID_ARGUMENT.
    """
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    message_type = getattr(descriptor, "full_name", "the request message")

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError, or invalid UTF-8 in a string field
            return MalformedRequest(message_type, exc)

    return parse


def _raise_if_malformed(request: Any) -> None:
    if isinstance(request, MalformedRequest):
        raise invalid_argument(
            {"request": f"the request bytes are not a valid {request.message_type}"}
        )


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        _raise_if_malformed(request)
        yield request


def _is_abort(exc: BaseException) -> bool:
    # context.abort() raises grpc.aio's internal AbortError; let it through.
    return type(exc).__name__ == "AbortError"


async def run_server(
    *,
    component: str,
    address: str,
    services: Sequence[Registration],
    readiness_check: ReadinessCheck,
    readiness_interval_s: float = 1.0,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    grace_s: float = 10.0,
    shutdown_delay_s: float | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> None:
    """Serve until SIGTERM/SIGINT, then drain and close.

    `interceptors` run inside the error mapping, so a `ServiceError` they
    raise reaches the caller as its canonical status.
    """
    telemetry.configure(component)
    server = grpc.aio.server(
        interceptors=[telemetry.server_interceptor(), ErrorInterceptor(), *interceptors],
        options=CHANNEL_OPTIONS,
    )
    for service in services:
        service.add_to_server(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [service.full_name for service in services]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"{component}: cannot listen on {address}")

    readiness = Readiness(health_servicer, names, readiness_check, readiness_interval_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    await server.start()
    log.info("%s listening on %s", component, address)
    readiness.start()
    if on_start is not None:
        await on_start()
    await stop.wait()

    log.info("%s shutting down: NOT_SERVING, draining for up to %.1fs", component, grace_s)
    await readiness.stop()
    # Keep answering while load balancers and Envoy notice NOT_SERVING, so no
    # new request is routed to a server that has stopped accepting them.
    if shutdown_delay_s is None:
        shutdown_delay_s = env_float("SHUTDOWN_DELAY_S", 0.0)
    await asyncio.sleep(shutdown_delay_s)
    await server.stop(grace_s)
    if on_shutdown is not None:
        await on_shutdown()
    telemetry.shutdown()
    log.info("%s stopped", component)
