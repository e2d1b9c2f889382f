"""The service outlives PostgreSQL outages: readiness follows, nothing is lost."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from semantik.internal.v1 import metadata_pb2, metadata_pb2_grpc
from semantik.v1 import collection_pb2
from semantik_runner.ports import free_port
from semantik_runner.stores import PostgresServer
from tests.metadata.conftest import (
    NOT_SERVING,
    SERVING,
    health_status,
    postgres_dir,
    rpc_error,
    start_metadata,
    wait_health,
)


async def test_readiness_follows_postgres_down_and_up() -> None:
    with postgres_dir() as root:
        postgres = PostgresServer(root / "pg", free_port())
        # The service starts first: PostgreSQL is not there yet.
        server = start_metadata(postgres.url, root / "metadata.log")
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub: Any = metadata_pb2_grpc.MetadataServiceStub(channel)
                await wait_health(server, NOT_SERVING, timeout_s=20)
                down = await rpc_error(
                    stub.ListCollections(metadata_pb2.ListCollectionsRequest(), timeout=5)
                )
                assert down.code() == grpc.StatusCode.UNAVAILABLE

                await asyncio.to_thread(postgres.start)
                await wait_health(server, SERVING, timeout_s=30)
                await stub.CreateCollection(
                    metadata_pb2.CreateCollectionRequest(
                        collection=collection_pb2.Collection(name="collections/survivor")
                    ),
                    timeout=5,
                )

                await asyncio.to_thread(postgres.stop)
                await wait_health(server, NOT_SERVING, timeout_s=15)
                lost = await rpc_error(
                    stub.GetCollection(
                        metadata_pb2.GetCollectionRequest(name="collections/survivor"), timeout=5
                    )
                )
                assert lost.code() == grpc.StatusCode.UNAVAILABLE

                await asyncio.to_thread(postgres.start)
                await wait_health(server, SERVING, timeout_s=30)
                back = await stub.GetCollection(
                    metadata_pb2.GetCollectionRequest(name="collections/survivor"), timeout=5
                )
                assert back.collection.name == "collections/survivor"
                assert server.process.poll() is None, "the service restarted"
                assert await health_status(server.address) == SERVING
        finally:
            code = server.stop()
            await asyncio.to_thread(postgres.stop)
        assert code == 0, server.log()
