"""IndexerService over gRPC: validation, statuses with details, queueing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from semantik.internal.v1 import indexer_pb2, indexer_pb2_grpc
from semantik_runner.stores import RedisServer
from servicekit.server import ErrorInterceptor
from services.indexer import jobs
from services.indexer.edge_store import EdgeVectorStore
from services.indexer.handler import IndexerHandler
from services.indexer.vector_store import VectorPoint


@pytest.fixture
async def stub(
    edge_store: EdgeVectorStore, redis_server: RedisServer
) -> AsyncIterator[tuple[Any, jobs.Queue]]:
    queue = jobs.connect(redis_server.url)
    await queue.flushdb()
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    indexer_pb2_grpc.add_IndexerServiceServicer_to_server(IndexerHandler(edge_store, queue), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield indexer_pb2_grpc.IndexerServiceStub(channel), queue
    await channel.close()
    await server.stop(None)
    await queue.aclose(close_connection_pool=True)


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    violations: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.update({v.field: v.description for v in bad.field_violations})
    return violations


def start_request(source: Path, **changes: Any) -> indexer_pb2.StartImportRequest:
    fields: dict[str, Any] = {
        "operation_id": "op-1",
        "collection_id": "books",
        "source_path": str(source),
        "chunk_tokens": 256,
        "overlap_tokens": 32,
    }
    fields.update(changes)
    return indexer_pb2.StartImportRequest(**fields)


async def test_collection_lifecycle_and_query(stub: tuple[Any, jobs.Queue]) -> None:
    client, _ = stub
    create = indexer_pb2.CreateVectorCollectionRequest(collection_id="books", dimensions=3)
    await client.CreateVectorCollection(create)
    await client.CreateVectorCollection(create)  # idempotent
    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await client.CreateVectorCollection(
            indexer_pb2.CreateVectorCollectionRequest(collection_id="books", dimensions=4)
        )
    assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS

    response = await client.QueryVectors(
        indexer_pb2.QueryVectorsRequest(collection_id="books", vector=[1, 0, 0], limit=5)
    )
    assert list(response.hits) == []

    await client.DeleteVectorCollection(
        indexer_pb2.DeleteVectorCollectionRequest(collection_id="books")
    )
    await client.DeleteVectorCollection(
        indexer_pb2.DeleteVectorCollectionRequest(collection_id="books")
    )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await client.QueryVectors(
            indexer_pb2.QueryVectorsRequest(collection_id="books", vector=[1, 0, 0], limit=5)
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_query_returns_nearest_first(
    stub: tuple[Any, jobs.Queue], edge_store: EdgeVectorStore
) -> None:
    client, _ = stub
    await edge_store.create_collection("books", 2)
    a, b = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    await edge_store.upsert("books", [VectorPoint(a, [1, 0], {}), VectorPoint(b, [0, 1], {})])
    response = await client.QueryVectors(
        indexer_pb2.QueryVectorsRequest(collection_id="books", vector=[0.2, 1], limit=2)
    )
    assert [hit.chunk_id for hit in response.hits] == [b, a]


@pytest.mark.parametrize(
    ("request_fields", "fields"),
    [
        ({"collection_id": "Bad_Id", "vector": [1.0], "limit": 1}, {"collection_id"}),
        ({"collection_id": "books", "vector": [], "limit": 1}, {"vector"}),
        ({"collection_id": "books", "vector": [1.0], "limit": 0}, {"limit"}),
        ({"collection_id": "books", "vector": [1.0], "limit": 1001}, {"limit"}),
    ],
)
async def test_query_validation(
    stub: tuple[Any, jobs.Queue], request_fields: dict[str, Any], fields: set[str]
) -> None:
    client, _ = stub
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.QueryVectors(indexer_pb2.QueryVectorsRequest(**request_fields))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error.value)) == fields


async def test_query_with_wrong_dimensions(
    stub: tuple[Any, jobs.Queue], edge_store: EdgeVectorStore
) -> None:
    client, _ = stub
    await edge_store.create_collection("books", 3)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.QueryVectors(
            indexer_pb2.QueryVectorsRequest(collection_id="books", vector=[1, 0], limit=1)
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has 2 values" in field_violations(error.value)["vector"]


async def test_create_validation(stub: tuple[Any, jobs.Queue]) -> None:
    client, _ = stub
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.CreateVectorCollection(
            indexer_pb2.CreateVectorCollectionRequest(collection_id="9lives", dimensions=0)
        )
    assert set(field_violations(error.value)) == {"collection_id", "dimensions"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source_path": "relative/docs"}, "source_path"),
        ({"source_path": "/no/such/folder"}, "source_path"),
        ({"source_path": ""}, "source_path"),
        ({"chunk_tokens": 0}, "chunk_tokens"),
        ({"chunk_tokens": 4097}, "chunk_tokens"),
        ({"overlap_tokens": -1}, "overlap_tokens"),
        ({"overlap_tokens": 256}, "overlap_tokens"),
        ({"operation_id": ""}, "operation_id"),
        ({"collection_id": "-x"}, "collection_id"),
    ],
)
async def test_start_import_validation(
    stub: tuple[Any, jobs.Queue], tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    client, queue = stub
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.StartImport(start_request(tmp_path, **changes))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error.value)) == {field}
    assert await queue.zcard(jobs.QUEUE_NAME) == 0


async def test_start_import_source_must_be_a_folder(
    stub: tuple[Any, jobs.Queue], tmp_path: Path
) -> None:
    client, _ = stub
    file = tmp_path / "a.txt"
    file.write_text("x", encoding="utf-8")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.StartImport(start_request(file))
    assert field_violations(error.value) == {"source_path": "is not a directory"}


async def test_start_import_unknown_collection(
    stub: tuple[Any, jobs.Queue], tmp_path: Path
) -> None:
    client, _ = stub
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.StartImport(start_request(tmp_path, validate_only=True))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_start_import_queues_once_and_validate_only_queues_nothing(
    stub: tuple[Any, jobs.Queue], edge_store: EdgeVectorStore, tmp_path: Path
) -> None:
    client, queue = stub
    await edge_store.create_collection("books", 3)
    response = await client.StartImport(start_request(tmp_path, validate_only=True))
    assert response.job_id == ""
    assert await queue.zcard(jobs.QUEUE_NAME) == 0
    first = await client.StartImport(start_request(tmp_path))
    again = await client.StartImport(start_request(tmp_path))
    assert first.job_id == again.job_id == "op-1"
    assert await queue.zcard(jobs.QUEUE_NAME) == 1
