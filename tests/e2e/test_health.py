"""Readiness follows the stores; SIGTERM drains; reflection answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from semantik.v1 import collection_pb2
from semantik_runner.mesh import HOST, Mesh
from semantik_runner.ports import free_port
from tests.e2e.conftest import Api

REPO = Path(__file__).resolve().parents[2]


def _status(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        try:
            return int(
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                .status
            )
        except grpc.RpcError:
            return -1


def _wait_status(address: str, wanted: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _status(address) == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"{address} did not reach status {wanted} in {timeout_s}s")


def _wait_envoy_ready(mesh: Mesh, wanted: int, timeout_s: float = 30.0) -> None:
    """Envoy's own /ready follows the gateway's readiness."""
    deadline = time.monotonic() + timeout_s
    code = 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{mesh.json_url}/ready", timeout=2) as response:
                code = response.status
        except urllib.error.HTTPError as error:
            code = error.code
        if code == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"envoy /ready answered {code}, not {wanted}, for {timeout_s}s")


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_losing_postgres_turns_metadata_and_gateway_not_serving(mesh: Mesh, api: Api) -> None:
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id="e2e-survives", collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    mesh.postgres.stop()
    try:
        _wait_status(mesh.metadata.address, NOT_SERVING)
        _wait_status(mesh.gateway.address, NOT_SERVING)
        _wait_envoy_ready(mesh, 503)
        # Liveness: the processes still answer.
        assert _status(mesh.metadata.address, "liveness") == SERVING
        assert _status(mesh.embedder.address) == SERVING
    finally:
        mesh.postgres.start()
    _wait_status(mesh.metadata.address, SERVING)
    _wait_status(mesh.gateway.address, SERVING)
    _wait_envoy_ready(mesh, 200)
    kept = api.collections.GetCollection(
        collection_pb2.GetCollectionRequest(name="collections/e2e-survives"), timeout=30
    )
    assert kept.name == "collections/e2e-survives"


def test_losing_redis_turns_indexer_not_serving(mesh: Mesh) -> None:
    mesh.redis.stop()
    try:
        _wait_status(mesh.indexer.address, NOT_SERVING)
        _wait_status(mesh.gateway.address, NOT_SERVING)
    finally:
        mesh.redis.start()
    _wait_status(mesh.indexer.address, SERVING)
    _wait_status(mesh.gateway.address, SERVING)


def test_sigterm_goes_not_serving_then_exits_and_traces_are_exported(mesh: Mesh) -> None:
    address = f"{HOST}:{free_port()}"
    env = {
        **os.environ,
        "GATEWAY_ADDRESS": address,
        "EMBEDDER_TARGET": mesh.embedder.address,
        "INDEXER_TARGET": mesh.indexer.address,
        "METADATA_TARGET": mesh.metadata.address,
        "SERVICE_TOKEN": mesh.service_token,
        "SHUTDOWN_DELAY_S": "3",
        "OTEL_TRACES_EXPORTER": "console",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.gateway"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_status(address, SERVING)
        process.send_signal(signal.SIGTERM)
        _wait_status(address, NOT_SERVING, timeout_s=3)
        spans, _ = process.communicate(timeout=30)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
    # One env var turned the console exporter on: the server interceptor's
    # spans of the health checks above were printed at shutdown.
    assert '"name": "/grpc.health.v1.Health/Check"' in spans


def test_reflection_lists_the_services_to_buf_curl(mesh: Mesh, api: Api, admin_token: str) -> None:
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id="a-reflected", collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    result = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "buf"),
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "--list-services",
            f"http://{mesh.grpc_target}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    services = set(result.stdout.split())
    assert {
        "semantik.v1.CollectionService",
        "semantik.v1.DocumentService",
        "semantik.v1.OperationService",
        "semantik.v1.SearchService",
        "grpc.health.v1.Health",
    } <= services
    listed = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "buf"),
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "-H",
            f"Authorization: Bearer {admin_token}",
            "--data",
            '{"pageSize": 1}',
            f"http://{mesh.grpc_target}/semantik.v1.CollectionService/ListCollections",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Collections list by id, so "a-reflected" comes first.
    page = json.loads(listed.stdout)
    assert [c["name"] for c in page["collections"]] == ["collections/a-reflected"]
    assert page["nextPageToken"]
