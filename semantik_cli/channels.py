"""A gRPC channel that sends a credential with every call, for any client of the public API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc


class BearerAuth(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
):
    """Adds `authorization: Bearer <credential>` (access token or API key) to
    every call, server streams (WatchOperation) and client streams
    (UploadDocuments) included."""

    def __init__(self, credential: str) -> None:
        self._metadata = (("authorization", f"Bearer {credential}"),)

    def _with_credential(self, details: Any) -> Any:
        return details._replace(metadata=tuple(details.metadata or ()) + self._metadata)

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._with_credential(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._with_credential(details), request)

    def intercept_stream_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._with_credential(details), requests)


def public_channel(target: str, credential: str = "") -> grpc.Channel:
    """A plaintext channel to the gateway or Envoy; calls carry `credential` when given."""
    channel = grpc.insecure_channel(target)
    if credential:
        return grpc.intercept_channel(channel, BearerAuth(credential))
    return channel
