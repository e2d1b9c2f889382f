"""Operation control through the real mesh (PostgreSQL, Redis, Qdrant Edge,
Envoy, MiniLM): following an operation as a stream over gRPC and JSON,
cancelling a running import, and retrying the documents an import failed."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import grpc
import pytest

from semantik.v1 import collection_pb2, document_pb2, operation_pb2, search_pb2
from semantik_runner.mesh import Mesh
from tests import documents
from tests.e2e.conftest import Api

SUCCEEDED = operation_pb2.OPERATION_STATE_SUCCEEDED


def _collection(api: Api, collection_id: str) -> str:
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id=collection_id, collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    return f"collections/{collection_id}"


def _import(api: Api, collection: str, root: Path) -> operation_pb2.Operation:
    operation: operation_pb2.Operation = api.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(parent=collection, source_path=str(root)), timeout=30
    )
    return operation


def _folder(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        documents.write_text(
            root / f"note-{i:04d}.txt",
            f"Field note {i}: the heron number {i} waded through reed bed {i * 7}.\n",
        )
    return root


def _drop(api: Api, collection: str) -> None:
    api.collections.DeleteCollection(
        collection_pb2.DeleteCollectionRequest(name=collection), timeout=60
    )


def test_watch_streams_progress_until_done_over_grpc_and_json(
    api: Api, mesh: Mesh, admin_token: str, tmp_path: Path
) -> None:
    collection = _collection(api, "watched")
    try:
        root = _folder(tmp_path / "docs", 40)
        operation = _import(api, collection, root)
        stream = list(
            api.operations.WatchOperation(
                operation_pb2.WatchOperationRequest(name=operation.name), timeout=120
            )
        )
        assert stream[-1].done and stream[-1].state == SUCCEEDED
        assert not any(o.done for o in stream[:-1])
        done = [o.progress.documents_done for o in stream]
        assert done == sorted(done)
        assert len(stream) == len({o.SerializeToString() for o in stream})  # only changes
        final = stream[-1].progress
        assert final.documents_done == 40
        assert final.chunks_total == final.chunks_done == 40
        assert (
            final.bytes_total == final.bytes_done == sum(p.stat().st_size for p in root.iterdir())
        )
        assert not final.HasField("eta")

        # Over JSON through Envoy: one object per line, the last one done.
        request = urllib.request.Request(
            f"{mesh.json_url}/v1/{operation.name}:watch",
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            lines = [line for line in response.read().decode().splitlines() if line.strip()]
        last = json.loads(lines[-1])
        assert last["name"] == operation.name
        assert last["done"] is True
        assert last["state"] == "OPERATION_STATE_SUCCEEDED"
        assert last["progress"]["bytesTotal"] == str(final.bytes_total)
    finally:
        _drop(api, collection)


def test_cancel_stops_a_running_import_and_keeps_what_it_indexed(api: Api, tmp_path: Path) -> None:
    collection = _collection(api, "cancelled")
    try:
        root = _folder(tmp_path / "docs", 600)
        operation = _import(api, collection, root)
        for update in api.operations.WatchOperation(
            operation_pb2.WatchOperationRequest(name=operation.name), timeout=120
        ):
            if update.progress.documents_done >= 1:
                break
        asked = api.operations.CancelOperation(
            operation_pb2.CancelOperationRequest(name=operation.name), timeout=30
        )
        assert asked.cancel_requested
        ended = api.wait_done(operation.name, timeout_s=120)
        assert ended.state == operation_pb2.OPERATION_STATE_CANCELLED
        assert ended.HasField("end_time")
        assert 1 <= ended.progress.documents_done < 600
        # What it indexed is whole: each listed document has its chunk, and
        # the collection's counts agree with the operation's.
        got = api.collections.GetCollection(
            collection_pb2.GetCollectionRequest(name=collection), timeout=30
        )
        assert got.document_count == ended.progress.documents_done
        assert got.chunk_count == ended.progress.chunks_done
        hits = api.search.Search(
            search_pb2.SearchRequest(collection=collection, query="heron waded", top_k=5),
            timeout=30,
        ).results
        assert hits

        with pytest.raises(grpc.RpcError) as again:
            api.operations.CancelOperation(
                operation_pb2.CancelOperationRequest(name=operation.name), timeout=30
            )
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        # Retrying a cancelled import does the rest, re-embedding nothing it did.
        retry = api.operations.RetryOperation(
            operation_pb2.RetryOperationRequest(name=operation.name), timeout=30
        )
        assert retry.kind == operation_pb2.OPERATION_KIND_RETRY_DOCUMENTS
        assert retry.retry_of == operation.name
        finished = api.wait_done(retry.name, timeout_s=240)
        assert finished.state == SUCCEEDED
        assert finished.progress.documents_unchanged == ended.progress.documents_done
        assert finished.progress.chunks_done == 600 - ended.progress.documents_done
    finally:
        _drop(api, collection)


def test_retry_indexes_the_failed_documents_alone(api: Api, tmp_path: Path) -> None:
    collection = _collection(api, "retried")
    try:
        root = _folder(tmp_path / "docs", 5)
        broken = documents.write_latin1_text(root / "menu.txt", "cr\u00e8me br\u00fbl\u00e9e")
        first = api.wait_done(_import(api, collection, root).name)
        assert first.state == SUCCEEDED
        assert [e.source_path for e in first.document_errors] == [str(broken)]
        nothing = api.search.Search(
            search_pb2.SearchRequest(
                collection=collection, query="quince", mode=search_pb2.SEARCH_MODE_SPARSE
            ),
            timeout=30,
        ).results
        assert not nothing

        documents.write_text(broken, "Quince custard, now in UTF-8.\n")
        retry = api.operations.RetryOperation(
            operation_pb2.RetryOperationRequest(name=first.name), timeout=30
        )
        done = api.wait_done(retry.name)
        assert done.state == SUCCEEDED
        # Only the failed document was read and embedded.
        assert (done.progress.documents_total, done.progress.documents_done) == (1, 1)
        assert done.progress.chunks_done == 1
        hits = api.search.Search(
            search_pb2.SearchRequest(
                collection=collection, query="quince", mode=search_pb2.SEARCH_MODE_SPARSE
            ),
            timeout=30,
        ).results
        assert hits and hits[0].source_path == str(broken)

        # Nothing failed this time: there is nothing to retry.
        with pytest.raises(grpc.RpcError) as empty:
            api.operations.RetryOperation(
                operation_pb2.RetryOperationRequest(name=done.name), timeout=30
            )
        assert empty.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        _drop(api, collection)
