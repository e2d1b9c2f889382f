"""Client channels to other Semantik services, and deadline propagation."""

from __future__ import annotations

import grpc

from servicekit import service_auth, telemetry
from servicekit.grpc_types import ServicerContext

# Messages carry embedding batches and hydrated chunks; 64 MiB bounds them
# without truncating real batches.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

MAX_METADATA_BYTES = 64 * 1024
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    # Above Envoy's request header limit (SEMANTIK_MAX_REQUEST_HEADERS_KB, 32 KiB),
    # so whatever Envoy forwards (it adds x-envoy-original-path, as long as the
    # caller's path) is read, never refused as RESOURCE_EXHAUSTED.
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    # A restarted service is used again within 2 s. gRPC's default backoff
    # grows to 120 s, and calls fail fast (UNAVAILABLE) while it waits.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def open_channel(target: str) -> grpc.aio.Channel:
    """An insecure channel (loopback or a private network) with tracing.

    With `SERVICE_TOKEN` set, every call on it carries the service token
    (`servicekit.service_auth`), which internal services require.
    """
    return grpc.aio.insecure_channel(
        target,
        options=CHANNEL_OPTIONS,
        interceptors=[*telemetry.client_interceptors(), *service_auth.client_interceptors()],
    )


def remaining(context: ServicerContext, default_s: float) -> float:
    """Seconds left of the caller's deadline, for a downstream call's timeout.

    Without a deadline from the caller, `default_s` bounds the downstream call
    so no request can wait forever.
    """
    left = context.time_remaining()
    if left is None:
        return default_s
    return max(float(left), 0.001)
