"""Internal services answer only callers with the shared service token.

Against the running mesh: embedder, indexer and metadata refuse calls without
the token or with a wrong one (UNAUTHENTICATED, whatever the method), serve
calls with it, and leave `grpc.health.v1` open to probes. Every process of the
mesh listens on the loopback interface only. In production a service without
a token refuses to start.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import psutil  # type: ignore[import-untyped]
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from semantik.internal.v1 import (
    embedder_pb2,
    embedder_pb2_grpc,
    indexer_pb2,
    indexer_pb2_grpc,
    metadata_pb2,
    metadata_pb2_grpc,
)
from semantik.v1 import collection_pb2
from semantik_runner import secret_files
from semantik_runner.mesh import SERVICE_TOKEN_FILE, Mesh
from servicekit.service_auth import METADATA_KEY
from tests.e2e.conftest import Api

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10


def _address(mesh: Mesh, name: str) -> str:
    return str(getattr(mesh, name).address)


# One cheap read of each internal service, and its methods with empty requests.
def _embedder_call(channel: grpc.Channel, metadata: list[tuple[str, str]]) -> object:
    return embedder_pb2_grpc.EmbedderServiceStub(channel).Info(
        embedder_pb2.InfoRequest(), timeout=TIMEOUT_S, metadata=metadata
    )


def _metadata_call(channel: grpc.Channel, metadata: list[tuple[str, str]]) -> object:
    return metadata_pb2_grpc.MetadataServiceStub(channel).ListCollections(
        metadata_pb2.ListCollectionsRequest(page_size=1), timeout=TIMEOUT_S, metadata=metadata
    )


def _indexer_call(channel: grpc.Channel, metadata: list[tuple[str, str]]) -> object:
    # A query of a collection that does not exist: past the token, an answer of the handler.
    try:
        return indexer_pb2_grpc.IndexerServiceStub(channel).QueryVectors(
            indexer_pb2.QueryVectorsRequest(), timeout=TIMEOUT_S, metadata=metadata
        )
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
            return error.code()
        raise


CALLS = {"embedder": _embedder_call, "metadata": _metadata_call, "indexer": _indexer_call}
MODULES = {"embedder": embedder_pb2, "metadata": metadata_pb2, "indexer": indexer_pb2}


def _methods(name: str) -> list[str]:
    (service,) = MODULES[name].DESCRIPTOR.services_by_name.values()
    return [f"/{service.full_name}/{method.name}" for method in service.methods]


def _code(call: object) -> grpc.StatusCode:
    try:
        call_result = call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    assert call_result is not None
    return grpc.StatusCode.OK


@pytest.mark.parametrize("name", sorted(CALLS))
def test_without_the_token_every_method_is_unauthenticated(mesh: Mesh, name: str) -> None:
    with grpc.insecure_channel(_address(mesh, name)) as channel:
        for method in [*_methods(name), "/semantik.internal.v1.NoSuchService/Nothing"]:
            # Raw bytes: the refusal comes before the request is even parsed.
            for payload in (b"", b"\xff\xff\xff"):
                call = channel.unary_unary(method)
                code = _code(lambda call=call, payload=payload: call(payload, timeout=TIMEOUT_S))
                assert code == grpc.StatusCode.UNAUTHENTICATED, (method, payload, code)
        # Reflection, too, is internal.
        reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        with pytest.raises(grpc.RpcError) as refused:
            list(channel.stream_stream(reflection)(iter([b""]), timeout=TIMEOUT_S))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_token_is_required_and_must_match(mesh: Mesh, name: str) -> None:
    call = CALLS[name]
    token = mesh.service_token
    wrong = [
        [],
        [(METADATA_KEY, "")],
        [(METADATA_KEY, "wrong")],
        [(METADATA_KEY, token[:-1])],
        [(METADATA_KEY, token + "x")],
        [(METADATA_KEY, token.upper() if token != token.upper() else token.lower())],
        [("authorization", f"Bearer {token}")],
    ]
    with grpc.insecure_channel(_address(mesh, name)) as channel:
        for metadata in wrong:
            error = _error(lambda metadata=metadata: call(channel, metadata))  # type: ignore[misc]
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
            assert "service token" in (error.details() or "")
        assert _code(lambda: call(channel, [(METADATA_KEY, token)])) == grpc.StatusCode.OK


def _error(call: object) -> grpc.RpcError:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call succeeded")


def test_the_embedders_stream_needs_the_token_too(mesh: Mesh) -> None:
    with grpc.insecure_channel(mesh.embedder.address) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        request = embedder_pb2.EmbedRequest(texts=["hello"], kind=embedder_pb2.INPUT_KIND_QUERY)
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.EmbedStream(iter([request]), timeout=TIMEOUT_S))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answers = list(
            stub.EmbedStream(
                iter([request]), timeout=60, metadata=[(METADATA_KEY, mesh.service_token)]
            )
        )
        assert answers


@pytest.mark.parametrize("name", ["embedder", "indexer", "metadata", "gateway"])
def test_health_needs_no_token(mesh: Mesh, name: str) -> None:
    with grpc.insecure_channel(_address(mesh, name)) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_the_gateway_reaches_the_internal_services_with_the_token(mesh: Mesh, api: Api) -> None:
    # The gateway's channels attach the token: a public call that needs metadata works.
    page = api.collections.ListCollections(
        collection_pb2.ListCollectionsRequest(page_size=1), timeout=30
    )
    assert page is not None


def test_the_token_is_kept_with_the_data_and_private(mesh: Mesh, tmp_path: Path) -> None:
    path = secret_files.path_of(mesh.data_dir, SERVICE_TOKEN_FILE)
    assert path.read_text().strip() == mesh.service_token
    assert len(mesh.service_token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for svc in mesh.services:
        assert svc.env["SERVICE_TOKEN"] == mesh.service_token
    # Reused on restart, different per data directory.
    first, created = secret_files.load_or_create(tmp_path, SERVICE_TOKEN_FILE)
    assert created
    # Hex: safe to paste after an option (a leading "-" broke `--token` in CI).
    assert re.fullmatch("[0-9a-f]{64}", first)
    assert secret_files.load_or_create(tmp_path, SERVICE_TOKEN_FILE) == (first, False)
    assert secret_files.load_or_create(tmp_path / "other", SERVICE_TOKEN_FILE)[0] != first
    assert Mesh(tmp_path).service_token == first


def _mesh_pids(mesh: Mesh) -> dict[str, int]:
    pids = {svc.name: svc.process.pid for svc in mesh.services if svc.process is not None}
    for name, process in (
        ("envoy", mesh.envoy.process),
        ("redis", mesh.redis.process),
        ("postgres", mesh.postgres.process),
    ):
        if process is not None:
            pids[name] = process.pid
    return pids


def _listening(pid: int) -> list[tuple[str, int]]:
    process = psutil.Process(pid)
    sockets = []
    for proc in [process, *process.children(recursive=True)]:
        try:
            connections = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        sockets += [
            (c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN
        ]
    return sockets


def _non_loopback_addresses() -> list[str]:
    return [
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET and not address.address.startswith("127.")
    ]


def test_every_process_listens_on_loopback_only(mesh: Mesh) -> None:
    seen: dict[str, list[tuple[str, int]]] = {}
    for name, pid in _mesh_pids(mesh).items():
        seen[name] = _listening(pid)
    for name in ("embedder", "indexer", "metadata", "gateway", "envoy"):
        assert seen[name], f"{name}: no listening socket found"
    for name, sockets in seen.items():
        for ip, port in sockets:
            listening = ipaddress.ip_address(ip)
            if isinstance(listening, ipaddress.IPv6Address) and listening.ipv4_mapped:
                listening = listening.ipv4_mapped  # gRPC's dual-stack socket for 127.0.0.1
            assert listening.is_loopback, f"{name} listens on {ip}:{port}"
    # And from outside the loopback interface nothing answers.
    ports = [mesh.ports.embedder, mesh.ports.indexer, mesh.ports.metadata, mesh.ports.gateway]
    for address in _non_loopback_addresses():
        for port in ports:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                assert sock.connect_ex((address, port)) != 0, f"{address}:{port} accepted"


@pytest.mark.parametrize("name", ["metadata", "indexer", "embedder", "gateway"])
def test_production_without_a_token_refuses_to_start(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SERVICE_TOKEN"}
    # Every other production setting is there, so the token is what is missing.
    env.update(SEMANTIK_ENV="production", PYTHONUNBUFFERED="1", JWT_SECRET_KEY="k1:" + "s" * 48)
    result = subprocess.run(
        [sys.executable, "-m", f"services.{name}"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "SERVICE_TOKEN" in result.stderr
    assert "production" in result.stderr
