"""Bad input on every public RPC is INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from semantik.v1 import (
    collection_pb2,
    document_pb2,
    operation_pb2,
    search_pb2,
)
from tests.e2e.conftest import Api, JsonApi

CASES: list[tuple[str, Callable[[Api], Any], Any, str]] = [
    ("CreateCollection", lambda a: a.collections.CreateCollection,
     collection_pb2.CreateCollectionRequest(collection_id="Bad Id!",
                                            collection=collection_pb2.Collection()),
     "collection_id"),
    ("CreateCollection", lambda a: a.collections.CreateCollection,
     collection_pb2.CreateCollectionRequest(
         collection_id="ok-id",
         collection=collection_pb2.Collection(
             chunking=collection_pb2.ChunkingConfig(chunk_tokens=100000))),
     "collection.chunking.chunk_tokens"),
    ("GetCollection", lambda a: a.collections.GetCollection,
     collection_pb2.GetCollectionRequest(name="notacollection"), "name"),
    ("ListCollections", lambda a: a.collections.ListCollections,
     collection_pb2.ListCollectionsRequest(page_size=-1), "page_size"),
    ("ListCollections", lambda a: a.collections.ListCollections,
     collection_pb2.ListCollectionsRequest(page_token="%%%garbage"), "page_token"),
    ("DeleteCollection", lambda a: a.collections.DeleteCollection,
     collection_pb2.DeleteCollectionRequest(name=""), "name"),
    ("ImportDocuments", lambda a: a.documents.ImportDocuments,
     document_pb2.ImportDocumentsRequest(parent="collections/x", source_path=""),
     "source_path"),
    ("ImportDocuments", lambda a: a.documents.ImportDocuments,
     document_pb2.ImportDocumentsRequest(parent="collections/BAD", source_path="/tmp"),
     "parent"),
    ("GetDocument", lambda a: a.documents.GetDocument,
     document_pb2.GetDocumentRequest(name="collections/x/documents/not-a-uuid"), "name"),
    ("ListDocuments", lambda a: a.documents.ListDocuments,
     document_pb2.ListDocumentsRequest(parent="collections/x", page_size=-5), "page_size"),
    ("GetOperation", lambda a: a.operations.GetOperation,
     operation_pb2.GetOperationRequest(name="operations/123"), "name"),
    ("ListOperations", lambda a: a.operations.ListOperations,
     operation_pb2.ListOperationsRequest(page_size=-1), "page_size"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="collections/x", query="   "), "query"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="collections/x", query="q", top_k=1000), "top_k"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="x", query="q"), "collection"),
]  # fmt: skip


def _field_violations(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status details"
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields += [violation.field for violation in bad_request.field_violations]
    return fields


@pytest.mark.parametrize(("rpc", "method", "request_message", "field"), CASES)
def test_grpc_bad_input_names_the_field(
    api: Api, rpc: str, method: Callable[[Api], Any], request_message: Any, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        method(api)(request_message, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    assert field in _field_violations(error.value)


def test_every_public_rpc_has_a_bad_input_case() -> None:
    methods = {
        method.name
        for module in (collection_pb2, document_pb2, operation_pb2, search_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods == {case[0] for case in CASES}


def test_import_of_a_missing_folder_names_source_path(api: Api) -> None:
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id="e2e-bad-source", collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    with pytest.raises(grpc.RpcError) as error:
        api.documents.ImportDocuments(
            document_pb2.ImportDocumentsRequest(
                parent="collections/e2e-bad-source", source_path="/no/such/folder"
            ),
            timeout=30,
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "source_path" in _field_violations(error.value)
    # Bad input records no operation.
    listed = api.operations.ListOperations(
        operation_pb2.ListOperationsRequest(page_size=1000), timeout=30
    )
    assert all(op.collection != "collections/e2e-bad-source" for op in listed.operations)


def test_unknown_collection_is_not_found(api: Api) -> None:
    with pytest.raises(grpc.RpcError) as error:
        api.collections.GetCollection(
            collection_pb2.GetCollectionRequest(name="collections/never-made"), timeout=30
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_json_bad_input_is_400_with_the_field(json_api: JsonApi) -> None:
    response = json_api.call("POST", "/v1/collections/x:search", {"query": "q", "topK": 5000})
    assert response.status == 400
    assert response.body["code"] == code_pb2.INVALID_ARGUMENT
    violations = [
        violation["field"]
        for detail in response.body["details"]
        for violation in detail.get("fieldViolations", [])
    ]
    assert violations == ["top_k"]


def test_a_short_deadline_is_deadline_exceeded_not_internal(api: Api) -> None:
    with pytest.raises(grpc.RpcError) as error:
        api.search.Search(
            search_pb2.SearchRequest(collection="collections/e2e-grpc", query="lift"),
            timeout=0.0005,
        )
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
