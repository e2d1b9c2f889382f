"""Rate limits and configured CORS origins at the edge, against the real Envoy.

Buckets are tiny and refill one token a minute, so every count below is exact
whatever the machine's speed: nothing here depends on timing. Each test talks
from its own loopback source address (127.0.0.x), so the per-address buckets of
one test are never touched by another.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from semantik.v1 import collection_pb2, collection_pb2_grpc
from semantik_runner.envoy import EdgeSettings, EnvoyProcess
from semantik_runner.ports import free_port
from tests.envoy.stub import StubGateway

PER_KEY = 3
PER_ADDRESS = 12
APP_ORIGIN = "https://app.example.com"
SETTINGS = EdgeSettings(
    rate_limit_per_key=1,
    rate_limit_per_key_burst=PER_KEY,
    rate_limit_per_address=1,
    rate_limit_per_address_burst=PER_ADDRESS,
    rate_limit_interval_s=60.0,
    cors_origins=(APP_ORIGIN, "http://localhost:3000"),
)


@pytest.fixture(scope="module")
async def limited_edge(
    stub_gateway: StubGateway, descriptor: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EnvoyProcess]:
    process = EnvoyProcess(
        config_dir=tmp_path_factory.mktemp("envoy-limits"),
        listen_port=free_port(),
        admin_port=free_port(),
        gateway_port=stub_gateway.port,
        descriptor_path=descriptor,
        settings=SETTINGS,
        health_interval_s=0.25,
    )
    await asyncio.to_thread(process.start)
    try:
        await asyncio.to_thread(process.wait_ready, 15.0)
        yield process
    finally:
        await asyncio.to_thread(process.stop)


def _client(edge: EnvoyProcess, source: str) -> httpx.AsyncClient:
    """A client whose connections come from `source` (any 127.0.0.0/8 address)."""
    return httpx.AsyncClient(
        base_url=edge.url,
        timeout=5.0,
        transport=httpx.AsyncHTTPTransport(local_address=source),
    )


async def _statuses(client: httpx.AsyncClient, n: int, headers: dict[str, str]) -> list[int]:
    return [(await client.get("/v1/collections/a", headers=headers)).status_code for _ in range(n)]


async def test_each_api_key_has_its_own_bucket(limited_edge: EnvoyProcess) -> None:
    async with _client(limited_edge, "127.0.0.3") as client:
        statuses = await _statuses(client, PER_KEY + 2, {"x-api-key": "key-one"})
        assert statuses == [200] * PER_KEY + [429] * 2
        # Another key from the same address still passes.
        assert await _statuses(client, 1, {"x-api-key": "key-two"}) == [200]


async def test_each_bearer_token_has_its_own_bucket(limited_edge: EnvoyProcess) -> None:
    async with _client(limited_edge, "127.0.0.4") as client:
        statuses = await _statuses(client, PER_KEY + 2, {"authorization": "Bearer one"})
        assert statuses == [200] * PER_KEY + [429] * 2
        assert await _statuses(client, 1, {"authorization": "Bearer two"}) == [200]
        # An API key takes precedence: the spent bearer bucket is not consulted.
        both = {"authorization": "Bearer one", "x-api-key": "key-three"}
        assert await _statuses(client, 1, both) == [200]


async def test_refusals_are_429_with_retry_after_and_cors(limited_edge: EnvoyProcess) -> None:
    async with _client(limited_edge, "127.0.0.5") as client:
        headers = {"x-api-key": "key-cors", "origin": APP_ORIGIN}
        await _statuses(client, PER_KEY, headers)
        refused = await client.get("/v1/collections/a", headers=headers)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["content-type"] == "application/json"
    assert refused.json() == {
        "code": grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        "message": "rate limited: retry later",
        "details": [],
    }
    # A browser can read the refusal.
    assert refused.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_each_address_has_its_own_bucket_for_http_and_grpc(
    limited_edge: EnvoyProcess,
) -> None:
    # gRPC clients come from 127.0.0.1; a spent key is RESOURCE_EXHAUSTED.
    async with grpc.aio.insecure_channel(limited_edge.address) as channel:
        stub = collection_pb2_grpc.CollectionServiceStub(channel)
        request = collection_pb2.GetCollectionRequest(name="collections/g")
        keyed = (("x-api-key", "grpc-key"),)
        for _ in range(PER_KEY):
            await stub.GetCollection(request, metadata=keyed, timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCollection(request, metadata=keyed, timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "{" not in (caught.value.details() or "")  # not the JSON reply body

        # Spend what is left of 127.0.0.1's bucket, without keys, over HTTP.
        async with _client(limited_edge, "127.0.0.1") as client:
            statuses = await _statuses(client, PER_ADDRESS + 1, {})
            assert statuses[-1] == 429
            assert statuses.count(200) <= PER_ADDRESS - PER_KEY
            # Fresh keys and forged client addresses do not help.
            assert await _statuses(client, 1, {"x-api-key": "fresh"}) == [429]
            assert await _statuses(client, 1, {"x-forwarded-for": "198.51.100.7"}) == [429]

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCollection(request, timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Another address is not affected.
    async with _client(limited_edge, "127.0.0.2") as other:
        assert await _statuses(other, 1, {}) == [200]


async def test_readiness_is_never_rate_limited(limited_edge: EnvoyProcess) -> None:
    async with _client(limited_edge, "127.0.0.6") as client:
        for _ in range(PER_ADDRESS + 3):
            assert (await client.get("/ready")).status_code == 200


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (APP_ORIGIN, True),
        ("http://localhost:3000", True),
        # The default localhost pattern is replaced by the configured list.
        ("http://localhost:5173", False),
        ("https://app.example.com.evil.example", False),
        ("https://evil.example", False),
    ],
)
async def test_cors_allows_configured_origins_only(
    limited_edge: EnvoyProcess, origin: str, allowed: bool
) -> None:
    async with _client(limited_edge, "127.0.0.7") as client:
        preflight = await client.options(
            "/v1/collections",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,x-api-key",
            },
        )
    if allowed:
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "x-api-key" in preflight.headers["access-control-allow-headers"]
    else:
        # Answered by Envoy, without the origin the browser needs.
        assert preflight.status_code == 200
        assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [(APP_ORIGIN, True), ("http://localhost:5173", False), ("https://evil.example", False)],
)
async def test_cors_headers_on_json_answers(
    limited_edge: EnvoyProcess, origin: str, allowed: bool
) -> None:
    async with _client(limited_edge, "127.0.0.8") as client:
        ok = await client.get("/v1/collections/a", headers={"origin": origin})
        missing = await client.get("/v1/nothing-here", headers={"origin": origin})
    assert (ok.status_code, missing.status_code) == (200, 404)
    for response in (ok, missing):
        if allowed:
            assert response.headers["access-control-allow-origin"] == origin
            assert "grpc-status" in response.headers["access-control-expose-headers"]
        else:
            assert "access-control-allow-origin" not in response.headers
