"""Index a folder and search it through the public API, over gRPC and JSON."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from semantik.v1 import collection_pb2, document_pb2, operation_pb2, search_pb2
from tests.e2e.conftest import CORPUS, Api, JsonApi


def _create(api: Api, collection_id: str, chunk_tokens: int = 0) -> collection_pb2.Collection:
    return api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id=collection_id,
            collection=collection_pb2.Collection(
                display_name=f"{collection_id} docs",
                chunking=collection_pb2.ChunkingConfig(chunk_tokens=chunk_tokens),
            ),
        ),
        timeout=30,
    )


@pytest.fixture(scope="module")
def indexed(api: Api, corpus: Path) -> str:
    collection = _create(api, "e2e-grpc", chunk_tokens=32)
    assert collection.name == "collections/e2e-grpc"
    assert collection.embedding_dimensions == 384
    operation = api.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(parent=collection.name, source_path=str(corpus)),
        timeout=30,
    )
    assert operation.name.startswith("operations/")
    assert operation.kind == operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS
    finished = api.wait_done(operation.name)
    assert finished.state == operation_pb2.OPERATION_STATE_SUCCEEDED, finished
    assert finished.progress.documents_total == len(CORPUS)
    assert finished.progress.documents_done == len(CORPUS)
    assert finished.progress.chunks_done >= len(CORPUS)
    return collection.name


def test_search_finds_the_right_passage_with_offsets(api: Api, corpus: Path, indexed: str) -> None:
    response = api.search.Search(
        search_pb2.SearchRequest(
            collection=indexed,
            query="why does an airplane wing generate lift?",
            top_k=3,
            mode=search_pb2.SEARCH_MODE_DENSE,
        ),
        timeout=30,
    )
    assert len(response.results) == 3
    best = response.results[0]
    assert best.source_path == str(corpus / "aero" / "wings.md")
    assert best.document.startswith(f"{indexed}/documents/")
    source = (corpus / "aero" / "wings.md").read_text(encoding="utf-8")
    assert source[best.start_offset : best.end_offset] == best.text
    scores = [result.score for result in response.results]
    assert scores == sorted(scores, reverse=True)
    assert 0.3 < best.score <= 1.0


def test_each_topic_ranks_its_own_document_first(api: Api, corpus: Path, indexed: str) -> None:
    queries = {
        "how to bake sourdough at home": "kitchen/bread.txt",
        "growing tomatoes and preventing blossom end rot": "garden/tomatoes.md",
        "what keeps a satellite in orbit": "space/orbits.txt",
    }
    for query, relative in queries.items():
        response = api.search.Search(
            search_pb2.SearchRequest(collection=indexed, query=query, top_k=1), timeout=30
        )
        assert response.results[0].source_path == str(corpus / relative), query


def test_collection_and_documents_are_listed_with_counts(api: Api, indexed: str) -> None:
    collection = api.collections.GetCollection(
        collection_pb2.GetCollectionRequest(name=indexed), timeout=30
    )
    assert collection.document_count == len(CORPUS)
    assert collection.chunk_count >= len(CORPUS)
    seen: list[str] = []
    token = ""
    while True:
        page = api.documents.ListDocuments(
            document_pb2.ListDocumentsRequest(parent=indexed, page_size=3, page_token=token),
            timeout=30,
        )
        assert len(page.documents) <= 3
        seen += [document.source_path for document in page.documents]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(CORPUS) == len(set(seen))
    assert seen == sorted(seen)
    first = api.documents.GetDocument(
        document_pb2.GetDocumentRequest(name=page.documents[0].name), timeout=30
    )
    assert first.source_path == seen[-1]
    assert len(first.content_hash) == 64


def test_reindexing_the_same_folder_does_not_duplicate(
    api: Api, corpus: Path, indexed: str
) -> None:
    before = api.collections.GetCollection(
        collection_pb2.GetCollectionRequest(name=indexed), timeout=30
    )
    operation = api.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(parent=indexed, source_path=str(corpus)), timeout=30
    )
    assert api.wait_done(operation.name).state == operation_pb2.OPERATION_STATE_SUCCEEDED
    after = api.collections.GetCollection(
        collection_pb2.GetCollectionRequest(name=indexed), timeout=30
    )
    assert (after.document_count, after.chunk_count) == (
        before.document_count,
        before.chunk_count,
    )
    response = api.search.Search(
        search_pb2.SearchRequest(collection=indexed, query="sourdough starter", top_k=10),
        timeout=30,
    )
    keys = [(r.document, r.chunk_index) for r in response.results]
    assert len(keys) == len(set(keys))


def test_progress_is_readable_while_the_import_runs(api: Api, tmp_path: Path) -> None:
    for number in range(40):
        (tmp_path / f"note-{number:02}.txt").write_text(
            f"Note {number}. " + "Wind tunnels measure the drag of scale models. " * 40,
            encoding="utf-8",
        )
    collection = _create(api, "e2e-progress")
    operation = api.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(parent=collection.name, source_path=str(tmp_path)),
        timeout=30,
    )
    observed = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        current = api.operations.GetOperation(
            operation_pb2.GetOperationRequest(name=operation.name), timeout=10
        )
        observed.append((current.state, current.progress.documents_done))
        if current.done:
            break
        time.sleep(0.05)
    assert observed[-1] == (operation_pb2.OPERATION_STATE_SUCCEEDED, 40)
    running = [done for state, done in observed if state == operation_pb2.OPERATION_STATE_RUNNING]
    assert running, "never observed the operation RUNNING"
    # Progress moves while it runs, not only at the end.
    assert any(0 < done < 40 for done in running), running


def test_delete_collection_removes_it(api: Api, corpus: Path) -> None:
    collection = _create(api, "e2e-delete")
    api.collections.DeleteCollection(
        collection_pb2.DeleteCollectionRequest(name=collection.name), timeout=30
    )
    with pytest.raises(grpc.RpcError) as error:
        api.collections.GetCollection(
            collection_pb2.GetCollectionRequest(name=collection.name), timeout=30
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        api.search.Search(
            search_pb2.SearchRequest(collection=collection.name, query="lift"), timeout=30
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_json_through_envoy_indexes_and_searches(json_api: JsonApi, corpus: Path) -> None:
    created = json_api.call(
        "POST",
        "/v1/collections?collectionId=e2e-json",
        {"displayName": "JSON", "chunking": {"chunkTokens": 64}},
    )
    assert created.status == 200, created.body
    assert created.body["name"] == "collections/e2e-json"
    assert created.body["embeddingDimensions"] == 384

    started = json_api.call(
        "POST", "/v1/collections/e2e-json/documents:import", {"sourcePath": str(corpus)}
    )
    assert started.status == 200, started.body
    name = started.body["name"]
    deadline = time.monotonic() + 120
    while True:
        operation = json_api.call("GET", f"/v1/{name}")
        assert operation.status == 200
        if operation.body.get("done"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert operation.body["state"] == "OPERATION_STATE_SUCCEEDED"

    found = json_api.call(
        "POST", "/v1/collections/e2e-json:search", {"query": "baking bread", "topK": 2}
    )
    assert found.status == 200, found.body
    results = found.body["results"]
    assert len(results) == 2
    assert results[0]["sourcePath"].endswith("kitchen/bread.txt")
    assert "sourdough" in results[0]["text"]

    listed = json_api.call("GET", "/v1/collections?pageSize=1000")
    assert "collections/e2e-json" in [c["name"] for c in listed.body["collections"]]
    assert json_api.call("DELETE", "/v1/collections/e2e-json").status == 200
    assert json_api.call("GET", "/v1/collections/e2e-json").status == 404
