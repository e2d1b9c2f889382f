"""Clients of the running mesh and a small real corpus."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from semantik.v1 import (
    api_key_pb2_grpc,
    auth_pb2_grpc,
    collection_pb2_grpc,
    document_pb2_grpc,
    grant_pb2_grpc,
    operation_pb2,
    operation_pb2_grpc,
    search_pb2_grpc,
    source_pb2_grpc,
    user_pb2_grpc,
)
from semantik_cli.channels import public_channel
from semantik_runner.mesh import Mesh

# Short real passages on distinct topics, so a query has one right answer.
CORPUS = {
    "aero/wings.md": (
        "# Lift\n\nAn aircraft wing produces lift because air flowing over the curved upper "
        "surface moves faster than air below it, lowering the pressure above the wing. "
        "The angle of attack also deflects air downwards, and the reaction pushes the wing up. "
        "At too high an angle of attack the flow separates and the wing stalls.\n"
    ),
    "kitchen/bread.txt": (
        "To bake sourdough bread, mix flour, water and salt with an active starter, let the "
        "dough ferment for several hours, shape it, proof it overnight in the refrigerator and "
        "bake it in a very hot Dutch oven until the crust is deep brown.\n"
    ),
    "garden/tomatoes.md": (
        "Tomato plants need full sun, deep watering at the base and a stake or cage for "
        "support. Pinch the suckers that grow between the stem and branches to get larger "
        "fruit, and mulch the soil to keep moisture even and prevent blossom end rot.\n"
    ),
    "space/orbits.txt": (
        "A satellite stays in orbit because it falls around the Earth: its horizontal speed "
        "is so high that the ground curves away beneath it as fast as gravity pulls it down. "
        "Low Earth orbit needs about 7.8 kilometres per second.\n"
    ),
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for relative, text in CORPUS.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@dataclass
class Api:
    channel: grpc.Channel
    collections: Any
    documents: Any
    operations: Any
    search: Any
    auth: Any
    users: Any
    grants: Any
    api_keys: Any
    sources: Any

    def wait_done(self, name: str, timeout_s: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            operation = self.operations.GetOperation(
                operation_pb2.GetOperationRequest(name=name), timeout=10
            )
            if operation.done:
                return operation
            time.sleep(0.2)
        raise TimeoutError(f"{name} not done after {timeout_s}s")


def api_for(target: str, token: str = "") -> Api:
    """The public API at `target`, calling with `token` (none when empty)."""
    channel = public_channel(target, token)
    return Api(
        channel=channel,
        collections=collection_pb2_grpc.CollectionServiceStub(channel),
        documents=document_pb2_grpc.DocumentServiceStub(channel),
        operations=operation_pb2_grpc.OperationServiceStub(channel),
        search=search_pb2_grpc.SearchServiceStub(channel),
        auth=auth_pb2_grpc.AuthServiceStub(channel),
        users=user_pb2_grpc.UserServiceStub(channel),
        grants=grant_pb2_grpc.GrantServiceStub(channel),
        api_keys=api_key_pb2_grpc.ApiKeyServiceStub(channel),
        sources=source_pb2_grpc.SourceServiceStub(channel),
    )


@pytest.fixture(scope="session")
def api(mesh: Mesh, admin_token: str) -> Iterator[Api]:
    """The public gRPC API as the bootstrap admin."""
    client = api_for(mesh.grpc_target, admin_token)
    yield client
    client.channel.close()


@dataclass
class JsonResponse:
    status: int
    body: Any


@dataclass
class JsonApi:
    base_url: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def call(self, method: str, path: str, body: Any = None) -> JsonResponse:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=self.headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return JsonResponse(response.status, json.loads(response.read() or b"null"))
        except urllib.error.HTTPError as error:
            raw = error.read()
            return JsonResponse(error.code, json.loads(raw) if raw else None)


@pytest.fixture(scope="session")
def json_api(mesh: Mesh, admin_token: str) -> JsonApi:
    """The JSON API through Envoy as the bootstrap admin."""
    return JsonApi(mesh.json_url, admin_token)
