"""A stub gateway for the edge tests: the public services, one internal method.

It answers a few calls of each public `semantik.v1` service, records what
reached it (method names, and the credentials headers), serves one internal
method (to prove Envoy never routes to it) and `grpc.health.v1` with a status
the tests flip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import grpc
from google.protobuf import empty_pb2, timestamp_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

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
from servicekit.errors import invalid_argument, not_found
from servicekit.server import ErrorInterceptor

INTERNAL_SERVICE = "semantik.internal.v1.MetadataService"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


@dataclass
class StubGateway:
    """What the stub saw, and a switch for its health."""

    port: int
    health: health.aio.HealthServicer
    calls: list[str] = field(default_factory=list)
    credentials: list[tuple[str | None, str | None]] = field(default_factory=list)

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


class StubAuth(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    def __init__(self, stub: StubGateway) -> None:
        self._stub = stub

    async def Login(self, request: Any, context: Context) -> Any:
        self._stub.calls.append("Login")
        metadata = dict(context.invocation_metadata() or ())
        self._stub.credentials.append((metadata.get("authorization"), metadata.get("x-api-key")))
        return auth_pb2.AuthTokens(
            access_token=f"token-for-{request.user_id}", token_type="Bearer", expires_in=900
        )


class StubUsers(user_pb2_grpc.UserServiceServicer):  # type: ignore[misc]
    def __init__(self, calls: list[str]) -> None:
        self._calls = calls

    async def GetUser(self, request: Any, context: Context) -> Any:
        self._calls.append("GetUser")
        return user_pb2.User(name=request.name, display_name="Stub user")


class StubGrants(grant_pb2_grpc.GrantServiceServicer):  # type: ignore[misc]
    def __init__(self, calls: list[str]) -> None:
        self._calls = calls

    async def ListGrants(self, request: Any, context: Context) -> Any:
        self._calls.append("ListGrants")
        return grant_pb2.ListGrantsResponse(
            grants=[grant_pb2.Grant(name=f"{request.parent}/grants/alice")]
        )


class StubApiKeys(api_key_pb2_grpc.ApiKeyServiceServicer):  # type: ignore[misc]
    def __init__(self, calls: list[str]) -> None:
        self._calls = calls

    async def ListApiKeys(self, request: Any, context: Context) -> Any:
        self._calls.append("ListApiKeys")
        return api_key_pb2.ListApiKeysResponse(api_keys=[api_key_pb2.ApiKey(name="apiKeys/k1")])


@asynccontextmanager
async def running_stub_gateway() -> AsyncIterator[StubGateway]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    port = server.add_insecure_port("127.0.0.1:0")
    stub = StubGateway(port=port, health=health.aio.HealthServicer())
    collection_pb2_grpc.add_CollectionServiceServicer_to_server(StubCollections(stub.calls), server)
    auth_pb2_grpc.add_AuthServiceServicer_to_server(StubAuth(stub), server)
    user_pb2_grpc.add_UserServiceServicer_to_server(StubUsers(stub.calls), server)
    grant_pb2_grpc.add_GrantServiceServicer_to_server(StubGrants(stub.calls), server)
    api_key_pb2_grpc.add_ApiKeyServiceServicer_to_server(StubApiKeys(stub.calls), server)
    server.add_generic_rpc_handlers([_internal_handler(stub.calls)])
    health_pb2_grpc.add_HealthServicer_to_server(stub.health, server)
    await stub.set_serving(True)
    await server.start()
    try:
        yield stub
    finally:
        await server.stop(0)
