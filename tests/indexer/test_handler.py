"""IndexerService over gRPC: validation, statuses with details, queueing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from arq.jobs import Job
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from semantik.internal.v1 import indexer_pb2, indexer_pb2_grpc
from semantik.v1 import search_pb2
from semantik_runner.stores import RedisServer
from servicekit.server import ErrorInterceptor
from services.indexer import jobs, sparse
from services.indexer.edge_store import EdgeVectorStore
from services.indexer.handler import IndexerHandler
from services.indexer.ingest import ImportSpec
from services.indexer.source_paths import OUTSIDE, PROTECTED, PathGuard
from services.indexer.uploads import NO_DATA_DIR, PART_SUFFIX, UploadSettings
from services.indexer.vector_store import SparseUnavailableError, VectorPoint, VectorQuery


@pytest.fixture
async def stub(
    edge_store: EdgeVectorStore, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[tuple[Any, jobs.Queue]]:
    queue = jobs.connect(redis_server.url)
    await queue.flushdb()
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    # The data directory at tmp_path/data, the edge store's at tmp_path/vectors.
    guard = PathGuard.build(
        data_dir=str(tmp_path / "data"), vector_data_dir=str(tmp_path / "vectors")
    )
    indexer_pb2_grpc.add_IndexerServiceServicer_to_server(
        IndexerHandler(edge_store, queue, guard), server
    )
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


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source folder beside the folders it must not lead to."""
    tmp = Path(os.path.realpath(tmp_path))
    root = tmp / "source"
    (root / "a" / "b").mkdir(parents=True)
    (tmp / "outside").mkdir()
    (tmp / "data" / "secrets").mkdir(parents=True)
    (root / "inner").symlink_to(root / "a" / "b", target_is_directory=True)
    (root / "escape").symlink_to(tmp / "outside", target_is_directory=True)
    (root / "escape-missing").symlink_to(tmp / "missing", target_is_directory=True)
    (root / "to-secrets").symlink_to(tmp / "data" / "secrets", target_is_directory=True)
    return root


async def refused(call: Any) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details() or "", field_violations(error.value)


async def test_resolve_source_path_answers_real_paths(
    stub: tuple[Any, jobs.Queue], source: Path
) -> None:
    client, _ = stub
    alias = source.parent / "alias"
    alias.symlink_to(source, target_is_directory=True)
    response = await client.ResolveSourcePath(
        indexer_pb2.ResolveSourcePathRequest(root=str(alias), path="inner")
    )
    assert (response.root, response.path) == (str(source), str(source / "a" / "b"))
    itself = await client.ResolveSourcePath(indexer_pb2.ResolveSourcePathRequest(root=str(source)))
    assert (itself.root, itself.path) == (str(source), str(source))


@pytest.mark.parametrize(
    ("existing", "missing"),
    [("escape", "escape-missing"), ("..", "../missing"), ("to-secrets", "to-secrets/gone")],
)
async def test_resolve_source_path_outside_is_one_answer(
    stub: tuple[Any, jobs.Queue], source: Path, existing: str, missing: str
) -> None:
    client, _ = stub
    answers = [
        await refused(
            client.ResolveSourcePath(
                indexer_pb2.ResolveSourcePathRequest(root=str(source), path=path)
            )
        )
        for path in (existing, missing)
    ]
    assert answers[0] == answers[1]
    code, _, violations = answers[0]
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == {"path": OUTSIDE}


@pytest.mark.parametrize(
    ("root", "path", "field"),
    [
        ("/", "", "root"),
        ("/proc/self", "", "root"),
        ("{tmp}/data", "", "root"),
        ("{tmp}/data/secrets", "", "root"),
        ("{tmp}/vectors", "", "root"),
        ("{tmp}/source", "/etc", "path"),
        ("{tmp}/source", "a/../../outside", "path"),
        ("{tmp}/source", "x" * 5000, "path"),
        ("{tmp}/source", "a\x01", "path"),
        ("{tmp}/source", "gone", "path"),
    ],
)
async def test_resolve_source_path_refusals_name_their_field(
    stub: tuple[Any, jobs.Queue], source: Path, root: str, path: str, field: str
) -> None:
    client, _ = stub
    request = indexer_pb2.ResolveSourcePathRequest(root=root.format(tmp=source.parent), path=path)
    code, _, violations = await refused(client.ResolveSourcePath(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations) == {field}


async def test_start_import_inside_its_source_root(
    stub: tuple[Any, jobs.Queue], edge_store: EdgeVectorStore, source: Path
) -> None:
    client, queue = stub
    await edge_store.create_collection("books", 3)
    folder = source / "a" / "b"
    await client.StartImport(start_request(folder, source_root=str(source), validate_only=True))
    assert await queue.zcard(jobs.QUEUE_NAME) == 0
    response = await client.StartImport(start_request(folder, source_root=str(source)))
    info = await Job(response.job_id, queue).info()
    assert info is not None
    queued = ImportSpec.from_proto(indexer_pb2.StartImportRequest.FromString(info.args[0]))
    assert (queued.source_root, queued.source_path) == (str(source), str(source / "a" / "b"))


@pytest.mark.parametrize("validate_only", [True, False])
async def test_start_import_outside_its_source_root_is_one_answer(
    stub: tuple[Any, jobs.Queue], edge_store: EdgeVectorStore, source: Path, validate_only: bool
) -> None:
    client, queue = stub
    await edge_store.create_collection("books", 3)
    sibling = source.parent / "source2"  # the root's spelling, not its folder
    sibling.mkdir()
    answers = set()
    for folder in (
        source / "escape",
        source / "escape-missing",
        source / "to-secrets",
        source.parent / "outside",
        source.parent / "missing",
        sibling,
    ):
        request = start_request(folder, source_root=str(source), validate_only=validate_only)
        code, message, violations = await refused(client.StartImport(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert violations == {"source_path": OUTSIDE}
        answers.add(message)
    assert len(answers) == 1
    assert await queue.zcard(jobs.QUEUE_NAME) == 0


async def test_start_import_with_a_protected_source_root(
    stub: tuple[Any, jobs.Queue], source: Path
) -> None:
    client, _ = stub
    data = source.parent / "data"
    request = start_request(data / "secrets", source_root=str(data))
    _, _, violations = await refused(client.StartImport(request))
    assert violations == {"source_root": PROTECTED}


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("/", "must not be the filesystem root"),
        ("/proc", PROTECTED),
        ("/dev", PROTECTED),
        ("{tmp}/data", PROTECTED),
        ("{tmp}/data/secrets", PROTECTED),
        ("{tmp}/vectors", PROTECTED),
    ],
)
async def test_start_import_without_a_source_root_refuses_protected_folders(
    stub: tuple[Any, jobs.Queue], source: Path, folder: str, message: str
) -> None:
    client, _ = stub
    request = start_request(Path(folder.format(tmp=source.parent)), validate_only=True)
    _, _, violations = await refused(client.StartImport(request))
    assert violations == {"source_path": message}


def hybrid_request(**changes: Any) -> indexer_pb2.QueryVectorsRequest:
    fields: dict[str, Any] = {
        "collection_id": "books",
        "vector": [1.0, 0.0],
        "limit": 10,
        "query_text": "wing flow",
        "mode": search_pb2.SEARCH_MODE_HYBRID,
    }
    fields.update(changes)
    return indexer_pb2.QueryVectorsRequest(**fields)


def stamp(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"vector": []}, {"vector"}),
        ({"query_text": "  \n"}, {"query_text"}),
        ({"mode": search_pb2.SEARCH_MODE_SPARSE, "query_text": ""}, {"query_text"}),
        ({"mode": search_pb2.SEARCH_MODE_DENSE, "vector": []}, {"vector"}),
        ({"vector": [], "query_text": ""}, {"vector", "query_text"}),
        ({"mode": 7}, {"mode"}),
        ({"fusion": 9}, {"fusion"}),
        ({"offset": -1}, {"offset"}),
        ({"offset": 9_995}, {"offset"}),
        ({"prefetch_limit": -1}, {"prefetch_limit"}),
        ({"prefetch_limit": 20_000}, {"prefetch_limit"}),
        ({"prefetch_limit": 15, "offset": 10}, {"prefetch_limit"}),
        ({"score_threshold": float("nan")}, {"score_threshold"}),
        ({"filter": search_pb2.SearchFilter(page_from=5, page_to=2)}, {"filter.page_from"}),
        ({"filter": search_pb2.SearchFilter(page_to=-1)}, {"filter.page_to"}),
        ({"filter": search_pb2.SearchFilter(mime_types=[""])}, {"filter.mime_types"}),
        (
            {
                "filter": search_pb2.SearchFilter(
                    modified_after=stamp(200), modified_before=stamp(200)
                )
            },
            {"filter.modified_after"},
        ),
    ],
)
async def test_search_validation(
    stub: tuple[Any, jobs.Queue], changes: dict[str, Any], fields: set[str]
) -> None:
    client, _ = stub
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.QueryVectors(hybrid_request(**changes))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error.value)) == fields


async def test_sparse_mode_ignores_the_vector_and_dense_mode_the_text(
    stub: tuple[Any, jobs.Queue], edge_store: EdgeVectorStore
) -> None:
    client, _ = stub
    await edge_store.create_collection("books", 2)
    sparse_only = hybrid_request(mode=search_pb2.SEARCH_MODE_SPARSE, vector=[])
    assert list((await client.QueryVectors(sparse_only)).hits) == []
    dense_only = hybrid_request(mode=search_pb2.SEARCH_MODE_UNSPECIFIED, query_text="")
    assert list((await client.QueryVectors(dense_only)).hits) == []


async def test_search_modes_and_filters_over_grpc(
    stub: tuple[Any, jobs.Queue], edge_store: EdgeVectorStore
) -> None:
    client, _ = stub
    await edge_store.create_collection("books", 2)
    wing, flow, other = (str(uuid.UUID(int=n)) for n in (1, 2, 3))
    await edge_store.upsert(
        "books",
        [
            VectorPoint(
                wing,
                [1, 0],
                {"source_path": "/d/a/wing.txt", "mime_type": "text/plain", "modified_at": 100.0},
                sparse.document_terms("Wings in a slipstream"),
            ),
            VectorPoint(
                flow,
                [0, 1],
                {"source_path": "/d/b/flow.md", "mime_type": "text/markdown", "modified_at": 300.0},
                sparse.document_terms("Laminar flow"),
            ),
            VectorPoint(
                other,
                [1, 1],
                {"source_path": "/d/b/x.md", "mime_type": "text/markdown", "modified_at": 500.0},
                sparse.document_terms("Nothing relevant"),
            ),
        ],
    )
    await edge_store.optimize("books")

    async def ids(**changes: Any) -> list[str]:
        response = await client.QueryVectors(hybrid_request(**changes))
        return [hit.chunk_id for hit in response.hits]

    assert await ids(mode=search_pb2.SEARCH_MODE_SPARSE, query_text="wing") == [wing]
    assert set(await ids()) == {wing, flow, other}
    assert set(await ids(fusion=search_pb2.FUSION_RRF)) == {wing, flow, other}
    assert await ids(limit=1, offset=1, fusion=search_pb2.FUSION_RRF) != await ids(
        limit=1, fusion=search_pb2.FUSION_RRF
    )
    only_markdown = search_pb2.SearchFilter(mime_types=["text/markdown"], path_prefix="/d/b/")
    assert set(await ids(filter=only_markdown)) == {flow, other}
    window = search_pb2.SearchFilter(modified_after=stamp(100), modified_before=stamp(500))
    assert set(await ids(filter=window)) == {wing, flow}
    assert await ids(filter=search_pb2.SearchFilter(page_from=1)) == []


async def test_sparse_search_on_an_old_collection_is_failed_precondition(
    stub: tuple[Any, jobs.Queue], edge_store: EdgeVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = stub
    await edge_store.create_collection("books", 2)

    async def no_sparse(collection_id: str, query: VectorQuery) -> list[Any]:
        raise SparseUnavailableError(collection_id)

    monkeypatch.setattr(edge_store, "search", no_sparse)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.QueryVectors(hybrid_request())
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "reindex" in (error.value.details() or "")


async def test_search_of_an_unknown_collection_is_not_found(stub: tuple[Any, jobs.Queue]) -> None:
    client, _ = stub
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await client.QueryVectors(hybrid_request(collection_id="missing"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


@contextlib.asynccontextmanager
async def serving(handler: IndexerHandler) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    indexer_pb2_grpc.add_IndexerServiceServicer_to_server(handler, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(None)


@pytest.fixture
async def upload_channel(
    edge_store: EdgeVectorStore, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[grpc.aio.Channel]:
    """A server whose uploads go to tmp_path/data/uploads."""
    queue = jobs.connect(redis_server.url)
    data_dir = str(tmp_path / "data")
    guard = PathGuard.build(data_dir=data_dir, vector_data_dir=str(tmp_path / "vectors"))
    handler = IndexerHandler(edge_store, queue, guard, UploadSettings(data_dir=data_dir))
    async with serving(handler) as channel:
        yield channel
    await queue.aclose(close_connection_pool=True)


def upload_part(
    file_name: str = "", data: bytes = b"", *, last: bool = False, **fields: Any
) -> indexer_pb2.WriteUploadRequest:
    return indexer_pb2.WriteUploadRequest(file_name=file_name, data=data, last=last, **fields)


async def stream(
    *messages: indexer_pb2.WriteUploadRequest,
) -> AsyncIterator[indexer_pb2.WriteUploadRequest]:
    for message in messages:
        yield message


def real_path(path: Path) -> str:
    return os.path.realpath(path)


def files_in(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def part_files(folder: Path) -> list[Path]:
    return list(folder.rglob(f"*{PART_SUFFIX}"))


async def test_write_upload_writes_the_files_and_answers_the_folder(
    upload_channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    client = indexer_pb2_grpc.IndexerServiceStub(upload_channel)
    response = await client.WriteUpload(
        stream(
            upload_part("a.md", b"hello ", collection_id="books", max_file_bytes=100),
            upload_part("", b"world", last=True, collection_id="books"),
            upload_part("notes/b.txt", b"plain", last=True),
        )
    )
    area = tmp_path / "data" / "uploads" / "books"
    assert response.folder == real_path(area)
    assert list(response.file_names) == ["a.md", "notes/b.txt"]
    assert response.bytes_written == 16
    assert files_in(area) == {"a.md": b"hello world", "notes/b.txt": b"plain"}
    assert part_files(tmp_path) == []


async def test_write_upload_needs_a_data_directory(
    edge_store: EdgeVectorStore, redis_server: RedisServer
) -> None:
    queue = jobs.connect(redis_server.url)
    async with serving(IndexerHandler(edge_store, queue)) as channel:
        client = indexer_pb2_grpc.IndexerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await client.WriteUpload(
                stream(upload_part("a.md", b"x", last=True, collection_id="books"))
            )
    await queue.aclose(close_connection_pool=True)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.value.details() == NO_DATA_DIR


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([], "is required on the first message"),
        ([upload_part("a.md", b"x", last=True)], "is required on the first message"),
        ([upload_part("a.md", b"x", last=True, collection_id="Bad_Id")], "must start with"),
        (
            [
                upload_part("a.md", b"x", last=True, collection_id="books"),
                upload_part("b.md", b"y", last=True, collection_id="films"),
            ],
            "must be the same on every message: books, then 'films'",
        ),
    ],
)
async def test_write_upload_collection_id(
    upload_channel: grpc.aio.Channel,
    messages: list[indexer_pb2.WriteUploadRequest],
    problem: str,
) -> None:
    client = indexer_pb2_grpc.IndexerServiceStub(upload_channel)
    code, _, violations = await refused(client.WriteUpload(stream(*messages)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations) == ["collection_id"]
    assert problem in violations["collection_id"]


async def test_write_upload_refusals_name_their_field_and_keep_earlier_files(
    upload_channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    client = indexer_pb2_grpc.IndexerServiceStub(upload_channel)
    area = tmp_path / "data" / "uploads" / "books"
    code, _, violations = await refused(
        client.WriteUpload(
            stream(
                upload_part("a.md", b"kept", last=True, collection_id="books"),
                upload_part("b.md", b"half"),
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == {"last": "b.md ended before its last part"}
    code, _, violations = await refused(
        client.WriteUpload(stream(upload_part("../c.md", b"x", last=True, collection_id="books")))
    )
    assert violations == {"file_name": "'../c.md' must not hold empty, '.' or '..' names"}
    assert list(files_in(area)) == ["a.md"]
    assert part_files(tmp_path) == []


async def test_write_upload_with_a_name_that_is_no_utf8(
    upload_channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    bad_name = b"\x12\x05\xffa.md"  # field 2 (file_name), 5 bytes, not UTF-8
    message = indexer_pb2.WriteUploadRequest(collection_id="books", data=b"x", last=True)
    call = upload_channel.stream_unary(
        "/semantik.internal.v1.IndexerService/WriteUpload",
        response_deserializer=indexer_pb2.WriteUploadResponse.FromString,
    )
    code, _, violations = await refused(call(stream_bytes(message.SerializeToString() + bad_name)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations) == ["request"]
    assert files_in(tmp_path / "data") == {}


async def stream_bytes(*messages: bytes) -> AsyncIterator[bytes]:
    for message in messages:
        yield message


async def eventually(check: Any, what: str) -> None:
    """Waits for the server side of a cancelled call (no timing asserted)."""
    for _ in range(600):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_write_upload_cancelled_by_the_client_leaves_no_part_file(
    upload_channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    client = indexer_pb2_grpc.IndexerServiceStub(upload_channel)

    async def stalled() -> AsyncIterator[indexer_pb2.WriteUploadRequest]:
        yield upload_part("a.md", b"kept", last=True, collection_id="books")
        yield upload_part("b.md", b"half")
        await asyncio.Event().wait()

    call = client.WriteUpload(stalled())
    await eventually(lambda: part_files(tmp_path), "b.md's temporary file")
    call.cancel()
    await eventually(lambda: not part_files(tmp_path), "the temporary file removed")
    area = tmp_path / "data" / "uploads" / "books"
    assert list(files_in(area)) == ["a.md"]
