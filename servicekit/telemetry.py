"""OpenTelemetry: tracer set-up and gRPC interceptors.

Exporting is off by default. `OTEL_TRACES_EXPORTER` (the variable the
OpenTelemetry spec defines) turns it on: `console` prints spans, `otlp` sends
them over OTLP/gRPC to `OTEL_EXPORTER_OTLP_ENDPOINT`. The interceptors are
always installed so trace context passes through every hop even when this
service exports nothing.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter


def configure(service_name: str) -> None:
    """Install a tracer provider when `OTEL_TRACES_EXPORTER` asks for one."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter_name in ("", "none"):
        return
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        exporter = OTLPSpanExporter()
    else:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER must be none, console or otlp, got {exporter_name!r}"
        )
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"semantik-{service_name}"})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def server_interceptor() -> Any:
    return aio_server_interceptor()


def client_interceptors() -> list[Any]:
    return list(aio_client_interceptors())


def shutdown() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
