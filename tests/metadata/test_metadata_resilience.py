"""The service outlives PostgreSQL outages: readiness follows, nothing committed
is lost, nothing half-written is kept."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import grpc

from semantik.internal.v1 import metadata_pb2, metadata_pb2_grpc
from semantik.v1 import collection_pb2, document_pb2
from semantik_runner.ports import free_port
from semantik_runner.stores import PostgresServer
from services.metadata.partitions import partition_key, partition_name
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


def document_request(collection_id: str, path: str, chunks: int) -> Any:
    return metadata_pb2.UpsertDocumentRequest(
        collection_id=collection_id,
        document=document_pb2.Document(
            source_path=path,
            content_hash=path.encode().hex(),
            size_bytes=chunks * 10,
            mime_type="text/plain",
            state=document_pb2.DOCUMENT_STATE_INDEXED,
        ),
        chunks=[
            metadata_pb2.ChunkRecord(
                chunk_id=str(uuid.uuid4()),
                chunk_index=i,
                text=f"chunk {i} of {path}",
                start_offset=i * 10,
                end_offset=i * 10 + 9,
                token_count=4,
            )
            for i in range(chunks)
        ],
    )


async def test_postgres_stopped_mid_write_keeps_committed_and_drops_partial() -> None:
    with postgres_dir() as root:
        postgres = PostgresServer(root / "pg", free_port())
        await asyncio.to_thread(postgres.start)
        server = start_metadata(postgres.url, root / "metadata.log")
        try:
            await wait_health(server, SERVING, timeout_s=30)
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub: Any = metadata_pb2_grpc.MetadataServiceStub(channel)
                await stub.CreateCollection(
                    metadata_pb2.CreateCollectionRequest(
                        collection=collection_pb2.Collection(name="collections/durable")
                    ),
                    timeout=5,
                )
                committed = [f"/committed/{i}" for i in range(5)]
                for path in committed:
                    await stub.UpsertDocument(document_request("durable", path, 300), timeout=10)

                # Hold the collection's partition so the next write stops half
                # way: its document row is written, its chunks wait.
                blocker = await asyncpg.connect(postgres.url)
                await blocker.execute("BEGIN")
                await blocker.execute(
                    f"LOCK TABLE {partition_name(partition_key('durable'))} IN SHARE MODE"
                )
                write = asyncio.ensure_future(
                    stub.UpsertDocument(document_request("durable", "/partial", 300), timeout=30)
                )
                for _ in range(200):
                    waiting = await blocker.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND application_name = 'semantik-metadata'"
                    )
                    if waiting:
                        break
                    await asyncio.sleep(0.05)
                assert waiting == 1, "the write never reached its chunks"

                await asyncio.to_thread(postgres.stop)  # mid-transaction
                failed = await rpc_error(write)
                assert failed.code() == grpc.StatusCode.UNAVAILABLE
                with suppress(Exception):
                    await blocker.close(timeout=1)
                await wait_health(server, NOT_SERVING, timeout_s=15)

                await asyncio.to_thread(postgres.start)
                await wait_health(server, SERVING, timeout_s=30)
                assert server.process.poll() is None, "the service restarted"

            check = await asyncpg.connect(postgres.url)
            try:
                rows = await check.fetch(
                    "SELECT d.source_path, d.chunk_count,"
                    " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS stored"
                    " FROM documents d ORDER BY d.source_path"
                )
            finally:
                await check.close()
            assert [r["source_path"] for r in rows] == committed
            assert all(r["chunk_count"] == r["stored"] == 300 for r in rows)
        finally:
            code = server.stop()
            await asyncio.to_thread(postgres.stop)
        assert code == 0, server.log()
