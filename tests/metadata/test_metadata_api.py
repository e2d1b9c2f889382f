"""MetadataService over gRPC against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import grpc
import pytest
from google.protobuf import timestamp_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import collection_pb2, document_pb2, operation_pb2
from tests.metadata.conftest import field_violations, rpc_error

INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def create_collection(stub: Any, collection_id: str, **fields: Any) -> Any:
    response = await stub.CreateCollection(
        metadata_pb2.CreateCollectionRequest(
            collection=collection_pb2.Collection(name=f"collections/{collection_id}", **fields)
        )
    )
    return response.collection


def chunk(text: str, index: int, chunk_id: str | None = None) -> metadata_pb2.ChunkRecord:
    return metadata_pb2.ChunkRecord(
        chunk_id=chunk_id or str(uuid.uuid4()),
        chunk_index=index,
        text=text,
        start_offset=index * 10,
        end_offset=index * 10 + len(text),
        token_count=len(text.split()),
    )


async def upsert(
    stub: Any,
    collection_id: str,
    source_path: str,
    chunks: list[metadata_pb2.ChunkRecord],
    state: document_pb2.DocumentState = document_pb2.DOCUMENT_STATE_INDEXED,
) -> Any:
    return await stub.UpsertDocument(
        metadata_pb2.UpsertDocumentRequest(
            collection_id=collection_id,
            document=document_pb2.Document(
                source_path=source_path,
                content_hash="ab" * 32,
                size_bytes=123,
                mime_type="text/plain",
                state=state,
                error="unreadable" if state == document_pb2.DOCUMENT_STATE_FAILED else "",
                modify_time=timestamp_pb2.Timestamp(seconds=1_700_000_000),
            ),
            chunks=chunks,
        )
    )


async def get_collection(stub: Any, collection_id: str) -> Any:
    response = await stub.GetCollection(
        metadata_pb2.GetCollectionRequest(name=f"collections/{collection_id}")
    )
    return response.collection


async def test_collection_create_get_delete(stub: Any) -> None:
    created = await create_collection(
        stub,
        "crud",
        display_name="CRUD",
        description="a test",
        embedding_model="all-MiniLM-L6-v2",
        embedding_dimensions=384,
    )
    assert created.name == "collections/crud"
    # Zero chunking means the public defaults, stored resolved.
    assert (created.chunking.chunk_tokens, created.chunking.overlap_tokens) == (200, 40)
    assert created.create_time.seconds > 0

    got = await get_collection(stub, "crud")
    assert got.display_name == "CRUD"
    assert got.embedding_dimensions == 384
    assert (got.document_count, got.chunk_count) == (0, 0)
    assert got.create_time == created.create_time

    again = await rpc_error(create_collection(stub, "crud"))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS

    await stub.DeleteCollection(metadata_pb2.DeleteCollectionRequest(name="collections/crud"))
    gone = await rpc_error(get_collection(stub, "crud"))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    twice = await rpc_error(
        stub.DeleteCollection(metadata_pb2.DeleteCollectionRequest(name="collections/crud"))
    )
    assert twice.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "name",
    [
        "collections/Upper",
        "collections/1digit",
        "collections/",
        "collections/a_b",
        "collections/" + "a" * 64,
        "collection/abc",
        "collections/abc/extra",
        "",
    ],
)
async def test_bad_collection_names_name_the_field(stub: Any, name: str) -> None:
    get = await rpc_error(stub.GetCollection(metadata_pb2.GetCollectionRequest(name=name)))
    assert get.code() == INVALID
    assert "name" in field_violations(get)

    create = await rpc_error(
        stub.CreateCollection(
            metadata_pb2.CreateCollectionRequest(collection=collection_pb2.Collection(name=name))
        )
    )
    assert create.code() == INVALID
    assert "collection.name" in field_violations(create)


async def test_longest_valid_collection_id_is_accepted(stub: Any) -> None:
    collection_id = "a" + "-9" * 31
    assert len(collection_id) == 63
    created = await create_collection(stub, collection_id)
    assert created.name == f"collections/{collection_id}"


async def test_bad_requests_name_their_fields(stub: Any) -> None:
    cases: list[tuple[Any, str]] = [
        (
            stub.GetDocument(metadata_pb2.GetDocumentRequest(name="collections/a/documents/x")),
            "name",
        ),
        (stub.GetOperation(metadata_pb2.GetOperationRequest(name="operations/42")), "name"),
        (stub.ListCollections(metadata_pb2.ListCollectionsRequest(page_size=-1)), "page_size"),
        (
            stub.ListCollections(metadata_pb2.ListCollectionsRequest(page_token="not a token")),
            "page_token",
        ),
        (stub.ListDocuments(metadata_pb2.ListDocumentsRequest(parent="nope")), "parent"),
        (
            stub.HydrateChunks(
                metadata_pb2.HydrateChunksRequest(collection_id="ok", chunk_ids=["bad"])
            ),
            "chunk_ids[0]",
        ),
        (
            stub.CreateCollection(
                metadata_pb2.CreateCollectionRequest(
                    collection=collection_pb2.Collection(
                        name="collections/overlap",
                        chunking=collection_pb2.ChunkingConfig(chunk_tokens=50, overlap_tokens=50),
                    )
                )
            ),
            "collection.chunking.overlap_tokens",
        ),
        (
            stub.UpsertDocument(
                metadata_pb2.UpsertDocumentRequest(
                    collection_id="ok",
                    document=document_pb2.Document(
                        source_path="/a", state=document_pb2.DOCUMENT_STATE_INDEXED
                    ),
                    chunks=[metadata_pb2.ChunkRecord(chunk_id="nope")],
                )
            ),
            "chunks[0].chunk_id",
        ),
        (
            stub.UpsertDocument(
                metadata_pb2.UpsertDocumentRequest(
                    collection_id="ok",
                    document=document_pb2.Document(
                        source_path="/a", state=document_pb2.DOCUMENT_STATE_INDEXED
                    ),
                    chunks=[chunk("nul \x00 inside", 0)],
                )
            ),
            "chunks[0].text",
        ),
        (
            stub.UpsertDocument(
                metadata_pb2.UpsertDocumentRequest(
                    collection_id="ok",
                    document=document_pb2.Document(
                        source_path="/a",
                        state=document_pb2.DOCUMENT_STATE_INDEXED,
                        modify_time=timestamp_pb2.Timestamp(seconds=10**12),
                    ),
                )
            ),
            "document.modify_time",
        ),
        (
            stub.CreateOperation(
                metadata_pb2.CreateOperationRequest(
                    operation=operation_pb2.Operation(collection="collections/ok")
                )
            ),
            "operation.kind",
        ),
    ]
    for call, field in cases:
        error = await rpc_error(call)
        assert error.code() == INVALID, (field, error)
        assert field in field_violations(error), (field, error.details())


async def test_list_collections_pages_without_gaps_or_repeats(stub: Any) -> None:
    created = {f"collections/page-{i:02d}" for i in range(23)}
    for name in sorted(created):
        await create_collection(stub, name.removeprefix("collections/"))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        response = await stub.ListCollections(
            metadata_pb2.ListCollectionsRequest(page_size=5, page_token=token)
        )
        assert len(response.collections) <= 5
        seen.extend(c.name for c in response.collections)
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)), "a collection appeared twice"
    assert seen == sorted(seen), "not ordered by id"
    assert created <= set(seen)
    assert pages >= 5
    # Page size 0 means the default (50), which holds them all here.
    default = await stub.ListCollections(metadata_pb2.ListCollectionsRequest())
    assert [c.name for c in default.collections] == seen[:50]


async def test_list_documents_pages_and_rejects_foreign_tokens(stub: Any) -> None:
    await create_collection(stub, "docs-paged")
    await create_collection(stub, "docs-other")
    paths = [f"/corpus/{i:03d}.txt" for i in range(17)]
    for path in reversed(paths):
        await upsert(stub, "docs-paged", path, [chunk(path, 0)])
    await upsert(stub, "docs-other", "/corpus/other.txt", [])

    seen: list[str] = []
    token = ""
    while True:
        response = await stub.ListDocuments(
            metadata_pb2.ListDocumentsRequest(
                parent="collections/docs-paged", page_size=4, page_token=token
            )
        )
        seen.extend(d.source_path for d in response.documents)
        assert all(
            d.name.startswith("collections/docs-paged/documents/") for d in response.documents
        )
        token = response.next_page_token
        if not token:
            break
        last_token = token
    assert seen == paths

    foreign = await rpc_error(
        stub.ListDocuments(
            metadata_pb2.ListDocumentsRequest(
                parent="collections/docs-other", page_token=last_token
            )
        )
    )
    assert foreign.code() == INVALID
    assert "page_token" in field_violations(foreign)

    missing = await rpc_error(
        stub.ListDocuments(metadata_pb2.ListDocumentsRequest(parent="collections/no-such"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_upsert_replaces_chunks_and_updates_counts(stub: Any) -> None:
    await create_collection(stub, "upserts")
    first = [chunk("alpha one", 0), chunk("beta two", 1), chunk("gamma three", 2)]
    created = await upsert(stub, "upserts", "/docs/a.md", first)
    assert list(created.replaced_chunk_ids) == []
    assert created.document.chunk_count == 3
    assert created.document.modify_time.seconds == 1_700_000_000
    collection = await get_collection(stub, "upserts")
    assert (collection.document_count, collection.chunk_count) == (1, 3)

    # The new version keeps the third chunk's id and adds one.
    second = [chunk("gamma three", 0, first[2].chunk_id), chunk("delta four", 1)]
    replaced = await upsert(stub, "upserts", "/docs/a.md", second)
    assert replaced.document.name == created.document.name
    assert sorted(replaced.replaced_chunk_ids) == sorted([first[0].chunk_id, first[1].chunk_id])
    collection = await get_collection(stub, "upserts")
    assert (collection.document_count, collection.chunk_count) == (1, 2)
    assert collection.update_time.ToDatetime() >= collection.create_time.ToDatetime()

    hydrated = await stub.HydrateChunks(
        metadata_pb2.HydrateChunksRequest(
            collection_id="upserts",
            chunk_ids=[*(c.chunk_id for c in first), second[1].chunk_id],
        )
    )
    assert [h.chunk.text for h in hydrated.chunks] == ["gamma three", "delta four"]

    # A failed document is listed but not counted as indexed.
    failed = await upsert(
        stub, "upserts", "/docs/broken.bin", [], state=document_pb2.DOCUMENT_STATE_FAILED
    )
    assert failed.document.error == "unreadable"
    got = await stub.GetDocument(metadata_pb2.GetDocumentRequest(name=failed.document.name))
    assert got.document.state == document_pb2.DOCUMENT_STATE_FAILED
    collection = await get_collection(stub, "upserts")
    assert (collection.document_count, collection.chunk_count) == (1, 2)

    absent = await rpc_error(upsert(stub, "no-such-collection", "/x", []))
    assert absent.code() == grpc.StatusCode.NOT_FOUND


async def test_chunk_id_of_another_document_is_already_exists(stub: Any) -> None:
    await create_collection(stub, "chunk-ids")
    taken = chunk("one", 0)
    await upsert(stub, "chunk-ids", "/a", [taken])
    clash = await rpc_error(upsert(stub, "chunk-ids", "/b", [taken]))
    assert clash.code() == grpc.StatusCode.ALREADY_EXISTS
    # The failed transaction left nothing behind.
    listed = await stub.ListDocuments(
        metadata_pb2.ListDocumentsRequest(parent="collections/chunk-ids")
    )
    assert [d.source_path for d in listed.documents] == ["/a"]


async def test_hydrate_keeps_request_order_and_collection_isolation(stub: Any) -> None:
    await create_collection(stub, "hydrate-a")
    await create_collection(stub, "hydrate-b")
    a = [chunk(f"a{i}", i) for i in range(4)]
    a[3].page = 7  # page numbers round-trip
    b = [chunk("b0", 0)]
    doc_a = await upsert(stub, "hydrate-a", "/a.txt", a)
    await upsert(stub, "hydrate-b", "/b.txt", b)

    wanted = [a[3].chunk_id, b[0].chunk_id, str(uuid.uuid4()), a[0].chunk_id, a[2].chunk_id]
    response = await stub.HydrateChunks(
        metadata_pb2.HydrateChunksRequest(collection_id="hydrate-a", chunk_ids=wanted)
    )
    assert [h.chunk.chunk_id for h in response.chunks] == [
        a[3].chunk_id,
        a[0].chunk_id,
        a[2].chunk_id,
    ]
    first = response.chunks[0]
    assert first.chunk.text == "a3"
    assert (first.chunk.start_offset, first.chunk.end_offset) == (30, 32)
    assert (first.chunk.page, response.chunks[1].chunk.page) == (7, 0)
    assert first.document == doc_a.document.name
    assert first.source_path == "/a.txt"

    other = await stub.HydrateChunks(
        metadata_pb2.HydrateChunksRequest(collection_id="hydrate-b", chunk_ids=wanted)
    )
    assert [h.chunk.chunk_id for h in other.chunks] == [b[0].chunk_id]


async def test_operation_lifecycle(stub: Any) -> None:
    await create_collection(stub, "ops")
    created = (
        await stub.CreateOperation(
            metadata_pb2.CreateOperationRequest(
                operation=operation_pb2.Operation(
                    kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                    collection="collections/ops",
                    source_path="/corpus",
                )
            )
        )
    ).operation
    assert created.name.startswith("operations/")
    assert created.state == operation_pb2.OPERATION_STATE_PENDING
    assert not created.done
    assert not created.HasField("end_time")

    async def update(**fields: Any) -> Any:
        response = await stub.UpdateOperation(
            metadata_pb2.UpdateOperationRequest(name=created.name, **fields)
        )
        return response.operation

    running = await update(
        state=operation_pb2.OPERATION_STATE_RUNNING,
        progress=operation_pb2.OperationProgress(documents_total=3, documents_done=1),
        document_errors=[operation_pb2.DocumentError(source_path="/corpus/x", reason="binary")],
    )
    assert running.state == operation_pb2.OPERATION_STATE_RUNNING
    assert running.progress.documents_total == 3
    # No progress in the request keeps the stored counters; errors append.
    running = await update(
        document_errors=[operation_pb2.DocumentError(source_path="/corpus/y", reason="empty")]
    )
    assert running.progress.documents_done == 1
    assert [e.source_path for e in running.document_errors] == ["/corpus/x", "/corpus/y"]

    done = await update(
        state=operation_pb2.OPERATION_STATE_SUCCEEDED,
        progress=operation_pb2.OperationProgress(
            documents_total=3, documents_done=1, documents_failed=2, chunks_done=7, bytes_done=99
        ),
    )
    assert done.done
    assert done.HasField("end_time")
    assert done.progress.chunks_done == 7
    assert not done.HasField("error")

    got = (await stub.GetOperation(metadata_pb2.GetOperationRequest(name=created.name))).operation
    assert got == done

    # A retried final update is accepted; leaving the final state is not.
    retried = await update(state=operation_pb2.OPERATION_STATE_SUCCEEDED)
    assert retried.end_time == done.end_time
    reopen = await rpc_error(update(state=operation_pb2.OPERATION_STATE_RUNNING))
    assert reopen.code() == grpc.StatusCode.FAILED_PRECONDITION

    missing = await rpc_error(
        stub.UpdateOperation(metadata_pb2.UpdateOperationRequest(name=f"operations/{uuid.uuid4()}"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    no_collection = await rpc_error(
        stub.CreateOperation(
            metadata_pb2.CreateOperationRequest(
                operation=operation_pb2.Operation(
                    kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                    collection="collections/no-such",
                    source_path="/x",
                )
            )
        )
    )
    assert no_collection.code() == grpc.StatusCode.NOT_FOUND


async def test_failed_operation_carries_its_error(stub: Any) -> None:
    await create_collection(stub, "ops-failed")
    created = (
        await stub.CreateOperation(
            metadata_pb2.CreateOperationRequest(
                operation=operation_pb2.Operation(
                    kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                    collection="collections/ops-failed",
                    source_path="/missing",
                )
            )
        )
    ).operation
    failed = (
        await stub.UpdateOperation(
            metadata_pb2.UpdateOperationRequest(
                name=created.name,
                state=operation_pb2.OPERATION_STATE_FAILED,
                error_message="source folder not found",
            )
        )
    ).operation
    assert failed.done
    assert failed.error.message == "source folder not found"
    assert failed.error.code != 0


async def test_list_operations_newest_first_across_pages(stub: Any) -> None:
    await create_collection(stub, "ops-list")
    names = []
    for i in range(7):
        response = await stub.CreateOperation(
            metadata_pb2.CreateOperationRequest(
                operation=operation_pb2.Operation(
                    kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                    collection="collections/ops-list",
                    source_path=f"/src/{i}",
                )
            )
        )
        names.append(response.operation.name)
    listed: list[Any] = []
    token = ""
    while True:
        response = await stub.ListOperations(
            metadata_pb2.ListOperationsRequest(page_size=3, page_token=token)
        )
        listed.extend(response.operations)
        token = response.next_page_token
        if not token:
            break
    listed_names = [op.name for op in listed]
    assert len(listed_names) == len(set(listed_names))
    times = [op.create_time.ToDatetime() for op in listed]
    assert times == sorted(times, reverse=True)
    ours = [name for name in listed_names if name in set(names)]
    assert ours == list(reversed(names))


async def test_delete_collection_removes_documents_and_keeps_operations(stub: Any) -> None:
    await create_collection(stub, "doomed")
    chunks = [chunk("bye", 0)]
    await upsert(stub, "doomed", "/d.txt", chunks)
    operation = (
        await stub.CreateOperation(
            metadata_pb2.CreateOperationRequest(
                operation=operation_pb2.Operation(
                    kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                    collection="collections/doomed",
                    source_path="/d",
                )
            )
        )
    ).operation
    await stub.DeleteCollection(metadata_pb2.DeleteCollectionRequest(name="collections/doomed"))

    # The same id again starts empty: documents and chunks went with it.
    again = await create_collection(stub, "doomed")
    assert (again.document_count, again.chunk_count) == (0, 0)
    listed = await stub.ListDocuments(
        metadata_pb2.ListDocumentsRequest(parent="collections/doomed")
    )
    assert list(listed.documents) == []
    hydrated = await stub.HydrateChunks(
        metadata_pb2.HydrateChunksRequest(collection_id="doomed", chunk_ids=[chunks[0].chunk_id])
    )
    assert list(hydrated.chunks) == []
    kept = await stub.GetOperation(metadata_pb2.GetOperationRequest(name=operation.name))
    assert kept.operation.collection == "collections/doomed"


async def test_caller_deadline_bounds_the_database_wait(stub: Any, postgres: Any) -> None:
    await create_collection(stub, "deadline")
    created = (
        await stub.CreateOperation(
            metadata_pb2.CreateOperationRequest(
                operation=operation_pb2.Operation(
                    kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                    collection="collections/deadline",
                    source_path="/slow",
                )
            )
        )
    ).operation
    operation_id = created.name.removeprefix("operations/")
    blocker = await asyncpg.connect(postgres.url)
    try:
        # Hold the operation's row lock so the service's update has to wait.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(
            "SELECT 1 FROM operations WHERE id = $1 FOR UPDATE", uuid.UUID(operation_id)
        )
        error = await rpc_error(
            stub.UpdateOperation(
                metadata_pb2.UpdateOperationRequest(
                    name=created.name, state=operation_pb2.OPERATION_STATE_RUNNING
                ),
                timeout=0.5,
            )
        )
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The service gave up its statement with the caller's deadline, well
        # before DB_COMMAND_TIMEOUT (10 s), so nothing still waits on the lock.
        waiting = -1
        for _ in range(20):
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if waiting == 0:
                break
            await asyncio.sleep(0.1)
        assert waiting == 0
        await transaction.rollback()
    finally:
        await blocker.close()
    after = await stub.GetOperation(metadata_pb2.GetOperationRequest(name=created.name))
    assert after.operation.state == operation_pb2.OPERATION_STATE_PENDING


async def test_retried_upserts_never_duplicate(stub: Any, postgres: Any) -> None:
    await create_collection(stub, "retries")
    # The indexer's chunk ids are a function of (collection, path, content
    # hash, index), so a retried job sends exactly the same request.
    chunks = [
        chunk(f"retry {i}", i, str(uuid.uuid5(uuid.NAMESPACE_URL, f"r{i}"))) for i in range(5)
    ]
    first = await upsert(stub, "retries", "/r.txt", chunks)
    again = await upsert(stub, "retries", "/r.txt", chunks)
    racing = await asyncio.gather(*(upsert(stub, "retries", "/r.txt", chunks) for _ in range(4)))
    for response in (again, *racing):
        assert response.document.name == first.document.name
        assert list(response.replaced_chunk_ids) == []
        assert response.document.chunk_count == 5
    connection = await asyncpg.connect(postgres.url)
    try:
        counts = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM documents WHERE collection_id = 'retries') AS documents,"
            " (SELECT count(*) FROM chunks WHERE collection_id = 'retries') AS chunks"
        )
    finally:
        await connection.close()
    assert (counts["documents"], counts["chunks"]) == (1, 5)
    collection = await get_collection(stub, "retries")
    assert (collection.document_count, collection.chunk_count) == (1, 5)


async def test_list_documents_filters_by_prefix_mime_and_date(stub: Any) -> None:
    await create_collection(stub, "filtered")
    day = 86_400
    documents = [
        ("/data/notes/a.md", "text/markdown", 1_700_000_000),
        ("/data/notes/b.txt", "text/plain", 1_700_000_000 + day),
        ("/data/notes_old/c.md", "text/markdown", 1_700_000_000 + 2 * day),
        ("/data/%_odd/d.md", "text/markdown", 1_700_000_000 + 3 * day),
        ("/other/e.md", "text/markdown", 1_700_000_000 + 4 * day),
    ]
    for path, mime, modified in documents:
        await stub.UpsertDocument(
            metadata_pb2.UpsertDocumentRequest(
                collection_id="filtered",
                document=document_pb2.Document(
                    source_path=path,
                    content_hash="cd" * 32,
                    size_bytes=10,
                    mime_type=mime,
                    state=document_pb2.DOCUMENT_STATE_INDEXED,
                    modify_time=timestamp_pb2.Timestamp(seconds=modified),
                ),
                chunks=[chunk(path, 0)],
            )
        )

    async def paths(page_size: int = 0, **filters: Any) -> list[str]:
        found: list[str] = []
        token = ""
        while True:
            response = await stub.ListDocuments(
                metadata_pb2.ListDocumentsRequest(
                    parent="collections/filtered",
                    page_size=page_size,
                    page_token=token,
                    **filters,
                )
            )
            found += [document.source_path for document in response.documents]
            token = response.next_page_token
            if not token:
                return found

    assert await paths(path_prefix="/data/notes/") == ["/data/notes/a.md", "/data/notes/b.txt"]
    # The prefix is literal: % and _ are not wildcards.
    assert await paths(path_prefix="/data/%_") == ["/data/%_odd/d.md"]
    assert await paths(mime_type="text/plain") == ["/data/notes/b.txt"]
    window: dict[str, Any] = {
        "modified_after": timestamp_pb2.Timestamp(seconds=1_700_000_000 + day),
        "modified_before": timestamp_pb2.Timestamp(seconds=1_700_000_000 + 3 * day),
    }
    assert await paths(**window) == ["/data/notes/b.txt", "/data/notes_old/c.md"]
    combined = await paths(page_size=1, path_prefix="/data/", mime_type="text/markdown")
    assert combined == ["/data/%_odd/d.md", "/data/notes/a.md", "/data/notes_old/c.md"]

    # A token only continues a listing with the same filters.
    first = await stub.ListDocuments(
        metadata_pb2.ListDocumentsRequest(
            parent="collections/filtered", page_size=1, mime_type="text/markdown"
        )
    )
    changed = await rpc_error(
        stub.ListDocuments(
            metadata_pb2.ListDocumentsRequest(
                parent="collections/filtered",
                page_size=1,
                mime_type="text/plain",
                page_token=first.next_page_token,
            )
        )
    )
    assert changed.code() == INVALID
    assert "page_token" in field_violations(changed)

    backwards = await rpc_error(
        stub.ListDocuments(
            metadata_pb2.ListDocumentsRequest(
                parent="collections/filtered",
                modified_after=window["modified_before"],
                modified_before=window["modified_after"],
            )
        )
    )
    assert backwards.code() == INVALID
    assert "modified_before" in field_violations(backwards)
