"""The edge as clients see it: JSON, gRPC, gRPC-web, CORS, readiness, isolation.

Envoy is the unit under test: the real binary with the rendered config, in
front of a stub gateway that answers a few public `semantik.v1.CollectionService`
calls, one internal method (to prove Envoy never routes to it) and
`grpc.health.v1` with a status the tests flip. The whole mesh behind a real
gateway is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import empty_pb2, timestamp_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from semantik.v1 import collection_pb2, collection_pb2_grpc
from semantik_runner.envoy import DESCRIPTOR_PATH, EnvoyProcess
from semantik_runner.ports import free_port
from servicekit.errors import invalid_argument, not_found
from servicekit.server import ErrorInterceptor

INTERNAL_SERVICE = "semantik.internal.v1.MetadataService"
ALLOWED_ORIGIN = "http://localhost:5173"


@dataclass
class StubGateway:
    """What the stub saw, and a switch for its health."""

    port: int
    health: health.aio.HealthServicer
    calls: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set("", status)


class StubCollections(collection_pb2_grpc.CollectionServiceServicer):  # type: ignore[misc]
    def __init__(self, calls: list[str]) -> None:
        self._calls = calls

    async def CreateCollection(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self._calls.append("CreateCollection")
        if not request.collection_id.islower():
            raise invalid_argument({"collection_id": "must be lower-case"})
        collection = collection_pb2.Collection()
        collection.CopyFrom(request.collection)
        collection.name = f"collections/{request.collection_id}"
        collection.embedding_model = "stub-model"
        collection.create_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1_700_000_000))
        return collection

    async def GetCollection(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self._calls.append("GetCollection")
        if request.name == "collections/missing":
            raise not_found("semantik.io/Collection", request.name)
        return collection_pb2.Collection(name=request.name, display_name="Stub")

    async def ListCollections(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self._calls.append("ListCollections")
        return collection_pb2.ListCollectionsResponse(
            collections=[collection_pb2.Collection(name="collections/a")],
            next_page_token=f"after-{request.page_size}",
        )

    async def DeleteCollection(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        self._calls.append("DeleteCollection")
        return empty_pb2.Empty()


def _internal_handler(calls: list[str]) -> grpc.GenericRpcHandler:
    async def get_collection(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        calls.append(f"{INTERNAL_SERVICE}/GetCollection")
        return b""

    return grpc.method_handlers_generic_handler(
        INTERNAL_SERVICE, {"GetCollection": grpc.unary_unary_rpc_method_handler(get_collection)}
    )


@pytest.fixture(scope="module")
async def stub_gateway() -> AsyncIterator[StubGateway]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    port = server.add_insecure_port("127.0.0.1:0")
    stub = StubGateway(port=port, health=health.aio.HealthServicer())
    collection_pb2_grpc.add_CollectionServiceServicer_to_server(StubCollections(stub.calls), server)
    server.add_generic_rpc_handlers([_internal_handler(stub.calls)])
    health_pb2_grpc.add_HealthServicer_to_server(stub.health, server)
    await stub.set_serving(True)
    await server.start()
    yield stub
    await server.stop(0)


@pytest.fixture(scope="module")
def descriptor() -> Path:
    if not DESCRIPTOR_PATH.is_file():
        pytest.fail(f"{DESCRIPTOR_PATH} missing: run `make proto`")
    return DESCRIPTOR_PATH


@pytest.fixture(scope="module")
async def edge(
    stub_gateway: StubGateway, descriptor: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EnvoyProcess]:
    process = EnvoyProcess(
        config_dir=tmp_path_factory.mktemp("envoy"),
        listen_port=free_port(),
        admin_port=free_port(),
        gateway_port=stub_gateway.port,
        descriptor_path=descriptor,
        cors_origin_regex=r"^http://localhost(:[0-9]+)?$",
        health_interval_s=0.25,
    )
    # start() and wait_ready() block; the stub must keep answering meanwhile.
    await asyncio.to_thread(process.start)
    try:
        await asyncio.to_thread(process.wait_ready, 15.0)
        yield process
    finally:
        await asyncio.to_thread(process.stop)


@pytest.fixture
def calls(stub_gateway: StubGateway) -> Iterator[list[str]]:
    stub_gateway.calls.clear()
    yield stub_gateway.calls


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
    assert body["chunking"] == {"chunkTokens": 100, "overlapTokens": 0}
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
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-methods" not in refused.headers
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
