"""`python -m services.indexer` as its own process: readiness follows Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from semantik.internal.v1 import indexer_pb2, indexer_pb2_grpc
from semantik_runner.ports import free_port
from semantik_runner.stores import RedisServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis" / "data", free_port())
    server.start()
    yield server
    server.stop()


async def wait_for_status(stub: health_pb2_grpc.HealthStub, wanted: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            status = response.status
            if status == wanted:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"health stayed {status}, wanted {wanted}")


async def test_readiness_follows_redis(own_redis: RedisServer, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "INDEXER_ADDRESS": f"127.0.0.1:{port}",
        "REDIS_URL": own_redis.url,
        "VECTOR_DATA_DIR": str(tmp_path / "vectors"),
        "QDRANT_URL": "",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.indexer",
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        await wait_for_status(health, health_pb2.HealthCheckResponse.SERVING, 30)

        indexer = indexer_pb2_grpc.IndexerServiceStub(channel)
        await indexer.CreateVectorCollection(
            indexer_pb2.CreateVectorCollectionRequest(collection_id="books", dimensions=4),
            timeout=5,
        )
        assert (tmp_path / "vectors" / "books").is_dir()

        own_redis.stop()
        await wait_for_status(health, health_pb2.HealthCheckResponse.NOT_SERVING, 10)
        own_redis.start()
        await wait_for_status(health, health_pb2.HealthCheckResponse.SERVING, 10)

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        await channel.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
