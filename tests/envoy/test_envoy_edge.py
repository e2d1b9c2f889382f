"""The edge as clients see it: JSON, gRPC, gRPC-web, CORS, TLS, readiness, isolation.

Envoy is the unit under test: the real binary with the rendered config, in
front of a stub gateway (tests/envoy/stub.py) that answers a few calls of the
public `semantik.v1` services, one internal method (to prove Envoy never routes
to it) and `grpc.health.v1` with a status the tests flip. The whole mesh behind
a real gateway is tested elsewhere; rate limits in test_envoy_limits.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from semantik.v1 import (
    api_key_pb2,
    api_key_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    collection_pb2,
    collection_pb2_grpc,
    grant_pb2,
    grant_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)
from semantik_runner.envoy import EdgeSettings, EnvoyProcess
from semantik_runner.ports import free_port
from tests.envoy.stub import INTERNAL_SERVICE, StubGateway

ALLOWED_ORIGIN = "http://localhost:5173"
MAX_REQUEST_BYTES = 64 * 1024
# Never reached by these tests (rate limits have their own module).
UNLIMITED = EdgeSettings(
    rate_limit_per_address=100_000,
    rate_limit_per_address_burst=100_000,
    rate_limit_per_key=100_000,
    rate_limit_per_key_burst=100_000,
)


@pytest.fixture(scope="module")
async def edge(
    stub_gateway: StubGateway, descriptor: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EnvoyProcess]:
    config_dir = tmp_path_factory.mktemp("envoy")
    process = EnvoyProcess(
        config_dir=config_dir,
        listen_port=free_port(),
        admin_port=free_port(),
        gateway_port=stub_gateway.port,
        tls_port=free_port(),
        dev_cert_dir=config_dir / "secrets",
        descriptor_path=descriptor,
        settings=dataclasses.replace(
            UNLIMITED,
            cors_origin_regex=r"^http://localhost(:[0-9]+)?$",
            max_request_bytes=MAX_REQUEST_BYTES,
        ),
        health_interval_s=0.25,
    )
    # start() and wait_ready() block; the stub must keep answering meanwhile.
    await asyncio.to_thread(process.start)
    try:
        await asyncio.to_thread(process.wait_ready, 15.0)
        yield process
    finally:
        await asyncio.to_thread(process.stop)


BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


@pytest.fixture
async def http(edge: EnvoyProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def channel(edge: EnvoyProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(edge.address) as chan:
        yield chan


async def test_json_post_is_transcoded(http: httpx.AsyncClient, calls: list[str]) -> None:
    response = await http.post(
        "/v1/collections",
        params={"collectionId": "docs"},
        json={"displayName": "Docs", "chunking": {"chunkTokens": 100}},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["name"] == "collections/docs"
    assert body["displayName"] == "Docs"
    assert body["chunking"] == {
        "chunkTokens": 100,
        "overlapTokens": 0,
        "strategy": "CHUNKING_STRATEGY_UNSPECIFIED",
    }
    assert body["embeddingModel"] == "stub-model"
    assert body["createTime"] == "2023-11-14T22:13:20Z"
    # always_print_primitive_fields: zero values are present; int64 as strings.
    assert body["documentCount"] == "0"
    assert calls == ["CreateCollection"]


async def test_json_get_binds_path_and_query(http: httpx.AsyncClient, calls: list[str]) -> None:
    response = await http.get("/v1/collections/abc")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "collections/abc"

    response = await http.get("/v1/collections", params={"pageSize": 7})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "collections": [
            {
                "name": "collections/a",
                "displayName": "",
                "description": "",
                "embeddingModel": "",
                "embeddingDimensions": 0,
                "documentCount": "0",
                "chunkCount": "0",
            }
        ],
        "nextPageToken": "after-7",
    }
    assert calls == ["GetCollection", "ListCollections"]


async def test_delete_returns_empty_json(http: httpx.AsyncClient, calls: list[str]) -> None:
    response = await http.delete("/v1/collections/abc")
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert calls == ["DeleteCollection"]


async def test_invalid_argument_is_400_with_field_violations(
    http: httpx.AsyncClient, calls: list[str]
) -> None:
    response = await http.post(
        "/v1/collections", params={"collectionId": "Bad"}, json={"displayName": "x"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert body["message"] == "invalid argument: collection_id: must be lower-case"
    [detail] = body["details"]
    assert detail["@type"] == BAD_REQUEST_TYPE
    [violation] = detail["fieldViolations"]
    assert violation["field"] == "collection_id"
    assert violation["description"] == "must be lower-case"
    assert calls == ["CreateCollection"]


async def test_not_found_is_404_json(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/collections/missing")
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert body["message"] == "collections/missing not found"
    assert body["details"][0]["resourceName"] == "collections/missing"


async def test_unknown_query_parameter_is_rejected(
    http: httpx.AsyncClient, calls: list[str]
) -> None:
    response = await http.get("/v1/collections", params={"pageSise": 7})
    assert response.status_code == 400, response.text
    assert calls == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing-here"),
        ("PATCH", "/v1/collections/abc"),
        ("GET", "/grpc.health.v1.Health/Check"),
        ("POST", f"/{INTERNAL_SERVICE}/GetCollection"),
    ],
)
async def test_unmapped_http_requests_do_not_reach_the_gateway(
    http: httpx.AsyncClient, calls: list[str], method: str, path: str
) -> None:
    response = await http.request(method, path, json={})
    assert response.status_code == 404, response.text
    assert calls == []


async def test_grpc_to_public_service_passes(channel: grpc.aio.Channel, calls: list[str]) -> None:
    stub = collection_pb2_grpc.CollectionServiceStub(channel)
    reply = await stub.GetCollection(
        collection_pb2.GetCollectionRequest(name="collections/grpc"), timeout=5
    )
    assert reply.name == "collections/grpc"
    assert calls == ["GetCollection"]


async def test_grpc_error_details_pass_through(channel: grpc.aio.Channel) -> None:
    stub = collection_pb2_grpc.CollectionServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateCollection(
            collection_pb2.CreateCollectionRequest(collection_id="Bad"), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    metadata = dict(caught.value.trailing_metadata() or ())
    assert "grpc-status-details-bin" in metadata


async def test_grpc_to_internal_service_is_refused(
    edge: EnvoyProcess, stub_gateway: StubGateway, calls: list[str]
) -> None:
    method = f"/{INTERNAL_SERVICE}/GetCollection"
    # Control: the stub itself serves the internal method...
    async with grpc.aio.insecure_channel(stub_gateway.address) as direct:
        assert await direct.unary_unary(method)(b"", timeout=5) == b""
    assert calls == [method[1:]]
    calls.clear()
    # ...but never through the edge.
    async with grpc.aio.insecure_channel(edge.address) as chan:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await chan.unary_unary(method)(b"", timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(chan).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert calls == []


def _grpc_web_frame(flags: int, payload: bytes) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


def _grpc_web_frames(body: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while body:
        flags, length = struct.unpack(">BI", body[:5])
        frames.append((flags, body[5 : 5 + length]))
        body = body[5 + length :]
    return frames


async def test_grpc_web(http: httpx.AsyncClient, calls: list[str]) -> None:
    request = collection_pb2.GetCollectionRequest(name="collections/web")
    response = await http.post(
        "/semantik.v1.CollectionService/GetCollection",
        content=_grpc_web_frame(0, request.SerializeToString()),
        headers={
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            "origin": ALLOWED_ORIGIN,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/grpc-web")
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    (data_flags, data), (trailer_flags, trailers) = _grpc_web_frames(response.content)
    assert data_flags == 0
    assert collection_pb2.Collection.FromString(data).name == "collections/web"
    assert trailer_flags == 0x80
    assert b"grpc-status:0" in trailers.replace(b" ", b"")
    assert calls == ["GetCollection"]


async def test_cors_preflight(http: httpx.AsyncClient, calls: list[str]) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web",
    }
    allowed = await http.options("/v1/collections", headers={"origin": ALLOWED_ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "x-grpc-web" in allowed.headers["access-control-allow-headers"]

    refused = await http.options(
        "/v1/collections", headers={"origin": "https://evil.example", **preflight}
    )
    # Envoy answers a refused preflight itself (never forwarded, never a 5xx);
    # without Access-Control-Allow-Origin the browser refuses the call.
    assert refused.status_code == 200
    assert "access-control-allow-origin" not in refused.headers
    # OPTIONS that is not a preflight, and gRPC-web on a JSON path: 404, not 503.
    plain = await http.options("/v1/collections")
    assert plain.status_code == 404
    grpc_web_on_json = await http.post(
        "/v1/auth:logout", headers={"content-type": "application/grpc-web+proto"}
    )
    assert grpc_web_on_json.status_code == 404
    # gRPC is POST only: a GET on a gRPC path never reaches the gateway (it would reset it: 503).
    get_on_grpc = await http.get(
        "/semantik.v1.CollectionService/ListCollections",
        headers={"content-type": "application/grpc-web+proto"},
    )
    assert get_on_grpc.status_code == 404
    assert calls == []


async def _ready_status(http: httpx.AsyncClient, want: int, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    status = 0
    while time.monotonic() < deadline:
        status = (await http.get("/ready")).status_code
        if status == want:
            return status
        await asyncio.sleep(0.1)
    return status


async def test_ready_follows_gateway_health(
    http: httpx.AsyncClient, stub_gateway: StubGateway
) -> None:
    assert await _ready_status(http, 200) == 200
    await stub_gateway.set_serving(False)
    try:
        assert await _ready_status(http, 503) == 503
    finally:
        await stub_gateway.set_serving(True)
    assert await _ready_status(http, 200) == 200


# --- the auth services -------------------------------------------------------


async def test_login_is_transcoded_with_its_credentials(
    http: httpx.AsyncClient, stub_gateway: StubGateway, calls: list[str]
) -> None:
    response = await http.post(
        "/v1/auth:login",
        json={"userId": "alice", "password": "correct horse battery"},
        headers={"authorization": "Bearer abc", "x-api-key": "sk-1"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accessToken": "token-for-alice",
        "tokenType": "Bearer",
        "expiresIn": "900",
        "refreshToken": "",
        "refreshExpiresIn": "0",
    }
    assert calls == ["Login"]
    # Credentials reach the gateway as gRPC metadata.
    assert stub_gateway.credentials == [("Bearer abc", "sk-1")]


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("/v1/users/bob", "GetUser", {"name": "users/bob", "displayName": "Stub user"}),
        ("/v1/collections/c1/grants", "ListGrants", {"grants": ["collections/c1/grants/alice"]}),
        ("/v1/apiKeys", "ListApiKeys", {"apiKeys": ["apiKeys/k1"]}),
    ],
)
async def test_user_grant_and_api_key_routes_are_transcoded(
    http: httpx.AsyncClient, calls: list[str], path: str, method: str, expected: dict[str, Any]
) -> None:
    response = await http.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    for key, value in expected.items():
        if isinstance(value, list):
            assert [item["name"] for item in body[key]] == value
        else:
            assert body[key] == value
    assert calls == [method]


async def test_grpc_reaches_the_auth_services(channel: grpc.aio.Channel, calls: list[str]) -> None:
    tokens = await auth_pb2_grpc.AuthServiceStub(channel).Login(
        auth_pb2.LoginRequest(user_id="carol", password="x"), timeout=5
    )
    assert tokens.access_token == "token-for-carol"
    user = await user_pb2_grpc.UserServiceStub(channel).GetUser(
        user_pb2.GetUserRequest(name="users/carol"), timeout=5
    )
    assert user.name == "users/carol"
    grants = await grant_pb2_grpc.GrantServiceStub(channel).ListGrants(
        grant_pb2.ListGrantsRequest(parent="collections/c"), timeout=5
    )
    assert [g.name for g in grants.grants] == ["collections/c/grants/alice"]
    keys = await api_key_pb2_grpc.ApiKeyServiceStub(channel).ListApiKeys(
        api_key_pb2.ListApiKeysRequest(), timeout=5
    )
    assert [k.name for k in keys.api_keys] == ["apiKeys/k1"]
    assert calls == ["Login", "GetUser", "ListGrants", "ListApiKeys"]


async def test_cors_preflight_allows_the_api_key_header(http: httpx.AsyncClient) -> None:
    allowed = await http.options(
        "/v1/apiKeys",
        headers={
            "origin": ALLOWED_ORIGIN,
            "access-control-request-method": "GET",
            "access-control-request-headers": "authorization,x-api-key",
        },
    )
    assert allowed.status_code == 200
    assert "x-api-key" in allowed.headers["access-control-allow-headers"]
    assert "authorization" in allowed.headers["access-control-allow-headers"]


# --- size limits ---------------------------------------------------------------


async def test_oversize_json_body_is_413(http: httpx.AsyncClient, calls: list[str]) -> None:
    big = "x" * (MAX_REQUEST_BYTES + 1024)
    response = await http.post(
        "/v1/collections", params={"collectionId": "big"}, json={"description": big}
    )
    assert response.status_code == 413, response.text[:200]
    assert response.json() == {
        "code": grpc.StatusCode.INVALID_ARGUMENT.value[0],
        "message": "request body too large",
        "details": [],
    }
    # The same without a length up front (chunked upload).

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"description": "'
        for _ in range(MAX_REQUEST_BYTES // 8192 + 2):
            yield b"y" * 8192
        yield b'"}'

    response = await http.post(
        "/v1/collections",
        params={"collectionId": "big"},
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413, response.text[:200]
    assert calls == []


async def test_body_under_the_limit_passes(http: httpx.AsyncClient, calls: list[str]) -> None:
    response = await http.post(
        "/v1/collections",
        params={"collectionId": "small"},
        json={"description": "x" * (MAX_REQUEST_BYTES // 2)},
    )
    assert response.status_code == 200, response.text[:200]
    assert calls == ["CreateCollection"]


async def test_oversize_headers_are_refused(http: httpx.AsyncClient, calls: list[str]) -> None:
    kb = EdgeSettings().max_request_headers_kb
    response = await http.get("/v1/collections/abc", headers={"x-padding": "p" * (kb * 1024)})
    assert response.status_code == 431, response.text
    assert calls == []


# --- TLS ---------------------------------------------------------------------------


def _tls_context(edge: EnvoyProcess) -> ssl.SSLContext:
    assert edge.tls_cert is not None
    return ssl.create_default_context(cafile=str(edge.tls_cert))


def test_dev_certificate_is_private_and_in_the_given_directory(edge: EnvoyProcess) -> None:
    assert edge.tls_cert is not None and edge.tls_key is not None
    assert edge.tls_cert.parent == edge.config_dir / "secrets"
    assert edge.tls_key.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("http2", [False, True])
async def test_json_over_https(edge: EnvoyProcess, calls: list[str], http2: bool) -> None:
    async with httpx.AsyncClient(
        base_url=edge.tls_url, verify=_tls_context(edge), http2=http2, timeout=5.0
    ) as client:
        response = await client.post("/v1/auth:login", json={"userId": "tls", "password": "p"})
        assert response.status_code == 200, response.text
        assert response.json()["accessToken"] == "token-for-tls"
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        ready = await client.get("/ready")
        assert ready.status_code == 200
    assert calls == ["Login"]


async def test_https_with_an_untrusted_certificate_fails(edge: EnvoyProcess) -> None:
    async with httpx.AsyncClient(base_url=edge.tls_url, timeout=5.0) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/ready")


async def test_grpc_over_tls(edge: EnvoyProcess, calls: list[str]) -> None:
    assert edge.tls_cert is not None
    credentials = grpc.ssl_channel_credentials(root_certificates=edge.tls_cert.read_bytes())
    async with grpc.aio.secure_channel(edge.tls_address, credentials) as chan:
        reply = await collection_pb2_grpc.CollectionServiceStub(chan).GetCollection(
            collection_pb2.GetCollectionRequest(name="collections/tls"), timeout=5
        )
        assert reply.name == "collections/tls"
        # Internal services stay unreachable over TLS too.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await chan.unary_unary(f"/{INTERNAL_SERVICE}/GetCollection")(b"", timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert calls == ["GetCollection"]
