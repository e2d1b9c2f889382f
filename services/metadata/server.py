"""Wiring of the metadata service: config, store, handler, server."""

from __future__ import annotations

import asyncio
from typing import Any

from semantik.internal.v1 import metadata_pb2, metadata_pb2_grpc
from servicekit import service_auth
from servicekit.server import Registration, configure_logging, run_server
from services.metadata.config import MetadataConfig
from services.metadata.handler import MetadataHandler
from services.metadata.store import MetadataStore

SERVICE_NAME: str = metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name


async def serve(config: MetadataConfig) -> None:
    store = MetadataStore(config)
    handler = MetadataHandler(store, default_timeout_s=config.command_timeout_s)

    def add_to_server(server: Any) -> None:
        metadata_pb2_grpc.add_MetadataServiceServicer_to_server(handler, server)

    await run_server(
        component="metadata",
        address=config.address,
        services=[Registration(full_name=SERVICE_NAME, add_to_server=add_to_server)],
        readiness_check=store.check_ready,
        on_start=store.start,
        on_shutdown=store.close,
        interceptors=service_auth.server_interceptors(),
    )


def main() -> None:
    configure_logging("metadata")
    service_auth.require_service_token("metadata")
    asyncio.run(serve(MetadataConfig.from_env()))
