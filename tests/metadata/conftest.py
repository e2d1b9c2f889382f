"""A real PostgreSQL and the metadata service as its own process.

The service runs as `python -m services.metadata`, as in production, so the
tests see its real start-up (migrations included) and its SIGTERM shutdown.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from semantik.internal.v1 import metadata_pb2_grpc
from semantik_runner.ports import free_port
from semantik_runner.stores import PostgresServer

REPO = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class MetadataProcess:
    address: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, as an orchestrator stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"metadata ignored SIGTERM:\n{self.log()}") from None
        return self.process.returncode


def start_metadata(database_url: str, log_path: Path) -> MetadataProcess:
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "METADATA_ADDRESS": address,
        "DATABASE_URL": database_url,
        "DB_POOL_SIZE": "5",
        "DB_COMMAND_TIMEOUT": "10",
        "OTEL_TRACES_EXPORTER": "none",
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.metadata"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return MetadataProcess(address, process, log_path)


async def health_status(address: str, timeout_s: float = 1.0) -> Any:
    async with grpc.aio.insecure_channel(address) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
        )
        return response.status


async def wait_health(server: MetadataProcess, want: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"metadata exited with {server.process.returncode}:\n{server.log()}"
            )
        try:
            last = await health_status(server.address)
        except grpc.aio.AioRpcError as exc:
            last = exc.code()
        if last == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"health {last}, wanted {want} after {timeout_s}s:\n{server.log()}")


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """The error a call fails with; fails the test when the call succeeds."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError("the call succeeded; an error was expected")


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """The BadRequest field violations carried in grpc-status-details-bin."""
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin"
    violations: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            for violation in bad_request.field_violations:
                violations[violation.field] = violation.description
    return violations


@contextmanager
def postgres_dir() -> Iterator[Path]:
    """A folder for a PostgreSQL data directory, outside pytest's basetemp.

    As root, PostgreSQL runs as another user that must traverse the path, and
    every pytest session start resets pytest-of-root to mode 0700, so a
    concurrent session would lock a running server out of its own files.
    """
    root = Path(tempfile.mkdtemp(prefix="semantik-metadata-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_dir() as root:
        server = PostgresServer(root / "pg", free_port())
        server.start()
        yield server
        server.stop()


@pytest.fixture(scope="session")
async def metadata(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[MetadataProcess]:
    server = start_metadata(postgres.url, tmp_path_factory.mktemp("metadata") / "metadata.log")
    try:
        await wait_health(server, SERVING, timeout_s=30)
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"metadata exited with {code} on SIGTERM:\n{server.log()}"


@pytest.fixture(scope="session")
async def stub(metadata: MetadataProcess) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(metadata.address) as channel:
        yield metadata_pb2_grpc.MetadataServiceStub(channel)
