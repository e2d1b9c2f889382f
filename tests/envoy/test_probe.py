"""`python -m servicekit.probe`, the container health check, against a real server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from semantik_runner.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def health_server() -> AsyncIterator[tuple[str, health.aio.HealthServicer]]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    await server.stop(0)


async def _probe(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servicekit.probe",
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_serving_and_not_serving(
    health_server: tuple[str, health.aio.HealthServicer],
) -> None:
    target, servicer = health_server
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("liveness", health_pb2.HealthCheckResponse.SERVING)
    assert await _probe(target) == (0, f"{target} (server): SERVING\n")

    await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert await _probe(target) == (1, f"{target} (server): NOT_SERVING\n")
    # Liveness is its own name: a process that is not ready is still alive.
    assert (await _probe(target, "--service", "liveness"))[0] == 0


async def test_unknown_service_and_unreachable_fail(
    health_server: tuple[str, health.aio.HealthServicer],
) -> None:
    target, _ = health_server
    code, err = await _probe(target, "--service", "no.such.Service")
    assert code == 1
    assert "NOT_FOUND" in err
    code, err = await _probe(f"127.0.0.1:{free_port()}", "--timeout", "1", "-q")
    assert (code, err) == (1, "")
