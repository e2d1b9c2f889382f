"""Bad input on every public RPC is INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from semantik.v1 import (
    api_key_pb2,
    auth_pb2,
    collection_pb2,
    document_pb2,
    grant_pb2,
    operation_pb2,
    search_pb2,
    source_pb2,
    user_pb2,
)
from tests.e2e.conftest import Api, JsonApi

CASES: list[tuple[str, Callable[[Api], Any] | None, Any, str]] = [
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
     "source"),
    ("ImportDocuments", lambda a: a.documents.ImportDocuments,
     document_pb2.ImportDocumentsRequest(parent="collections/x", source="sources/x",
                                         source_path="/tmp"), "source"),
    ("ImportDocuments", lambda a: a.documents.ImportDocuments,
     document_pb2.ImportDocumentsRequest(parent="collections/x", source="x"), "source"),
    ("ImportDocuments", lambda a: a.documents.ImportDocuments,
     document_pb2.ImportDocumentsRequest(parent="collections/BAD", source_path="/tmp"),
     "parent"),
    ("UploadDocuments", lambda a: lambda r, timeout: a.documents.UploadDocuments(
        iter([r]), timeout=timeout),
     document_pb2.UploadDocumentsRequest(parent="collections/BAD", file_name="a.txt", last=True),
     "parent"),
    ("GetDocument", lambda a: a.documents.GetDocument,
     document_pb2.GetDocumentRequest(name="collections/x/documents/not-a-uuid"), "name"),
    ("ListDocuments", lambda a: a.documents.ListDocuments,
     document_pb2.ListDocumentsRequest(parent="collections/x", page_size=-5), "page_size"),
    ("GetOperation", lambda a: a.operations.GetOperation,
     operation_pb2.GetOperationRequest(name="operations/123"), "name"),
    ("ListOperations", lambda a: a.operations.ListOperations,
     operation_pb2.ListOperationsRequest(page_size=-1), "page_size"),
    ("WatchOperation", lambda a: lambda r, timeout: list(
        a.operations.WatchOperation(r, timeout=timeout)),
     operation_pb2.WatchOperationRequest(name="operations/123"), "name"),
    ("CancelOperation", lambda a: a.operations.CancelOperation,
     operation_pb2.CancelOperationRequest(name=""), "name"),
    ("RetryOperation", lambda a: a.operations.RetryOperation,
     operation_pb2.RetryOperationRequest(name="operations/not-an-id"), "name"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="collections/x", query="   "), "query"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="collections/x", query="q", top_k=1000), "top_k"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="x", query="q"), "collection"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="collections/x", query="q",
                              mode=cast(search_pb2.SearchMode, 99)), "mode"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="collections/x", query="q",
                              filter=search_pb2.SearchFilter(page_from=5, page_to=2)),
     "filter.page_to"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="collections/x", collections=["collections/y"],
                              query="q"), "collection"),
    ("Search", lambda a: a.search.Search,
     search_pb2.SearchRequest(collection="collections/x", query="q", page_token="zzz"),
     "page_token"),
    ("BootstrapAdmin", lambda a: a.auth.BootstrapAdmin,
     auth_pb2.BootstrapAdminRequest(bootstrap_token="t", user_id="admin2", password="short"),
     "password"),
    ("Login", lambda a: a.auth.Login, auth_pb2.LoginRequest(user_id="admin"), "password"),
    ("RefreshToken", lambda a: a.auth.RefreshToken, auth_pb2.RefreshTokenRequest(),
     "refresh_token"),
    ("Logout", lambda a: a.auth.Logout, auth_pb2.LogoutRequest(), "refresh_token"),
    ("ChangePassword", lambda a: a.auth.ChangePassword,
     auth_pb2.ChangePasswordRequest(current_password="x", new_password="short"), "new_password"),
    ("GetCurrentUser", None, None, ""),  # takes no input: nothing can be bad
    ("CreateUser", lambda a: a.users.CreateUser,
     user_pb2.CreateUserRequest(user_id="Bad Id", user=user_pb2.User(role=user_pb2.ROLE_VIEWER),
                                password="long enough password"), "user_id"),
    ("CreateUser", lambda a: a.users.CreateUser,
     user_pb2.CreateUserRequest(user_id="new-user", user=user_pb2.User(),
                                password="long enough password"), "user.role"),
    ("GetUser", lambda a: a.users.GetUser, user_pb2.GetUserRequest(name="admin"), "name"),
    ("ListUsers", lambda a: a.users.ListUsers, user_pb2.ListUsersRequest(page_size=-1),
     "page_size"),
    ("DeleteUser", lambda a: a.users.DeleteUser, user_pb2.DeleteUserRequest(name="users/"),
     "name"),
    ("SetGrant", lambda a: a.grants.SetGrant,
     grant_pb2.SetGrantRequest(parent="collections/x", user="users/admin"), "role"),
    ("ListGrants", lambda a: a.grants.ListGrants,
     grant_pb2.ListGrantsRequest(parent="collections/x", page_size=-1), "page_size"),
    ("DeleteGrant", lambda a: a.grants.DeleteGrant,
     grant_pb2.DeleteGrantRequest(name="collections/x/grants"), "name"),
    ("CreateApiKey", lambda a: a.api_keys.CreateApiKey,
     api_key_pb2.CreateApiKeyRequest(api_key=api_key_pb2.ApiKey(
         collections=["collections/x"])), "api_key.verbs"),
    ("CreateApiKey", lambda a: a.api_keys.CreateApiKey,
     api_key_pb2.CreateApiKeyRequest(api_key=api_key_pb2.ApiKey(
         collections=["x"], verbs=[api_key_pb2.API_KEY_VERB_READ])), "api_key.collections[0]"),
    ("ListApiKeys", lambda a: a.api_keys.ListApiKeys,
     api_key_pb2.ListApiKeysRequest(page_size=-1), "page_size"),
    ("DeleteApiKey", lambda a: a.api_keys.DeleteApiKey,
     api_key_pb2.DeleteApiKeyRequest(name="keys/1"), "name"),
    ("CreateSource", lambda a: a.sources.CreateSource,
     source_pb2.CreateSourceRequest(source_id="Bad Id", source=source_pb2.Source(path="/x")),
     "source_id"),
    ("CreateSource", lambda a: a.sources.CreateSource,
     source_pb2.CreateSourceRequest(source_id="ok-id", source=source_pb2.Source()),
     "source.path"),
    ("CreateSource", lambda a: a.sources.CreateSource,
     source_pb2.CreateSourceRequest(source_id="ok-id", source=source_pb2.Source(path="/")),
     "source.path"),
    ("GetSource", lambda a: a.sources.GetSource, source_pb2.GetSourceRequest(name="x"), "name"),
    ("ListSources", lambda a: a.sources.ListSources,
     source_pb2.ListSourcesRequest(page_size=-1), "page_size"),
    ("DeleteSource", lambda a: a.sources.DeleteSource,
     source_pb2.DeleteSourceRequest(name="sources/"), "name"),
    ("SetSourceGrant", lambda a: a.sources.SetSourceGrant,
     source_pb2.SetSourceGrantRequest(parent="sources/default", user="users/admin"), "role"),
    ("ListSourceGrants", lambda a: a.sources.ListSourceGrants,
     source_pb2.ListSourceGrantsRequest(parent="sources/default", page_size=-1), "page_size"),
    ("DeleteSourceGrant", lambda a: a.sources.DeleteSourceGrant,
     source_pb2.DeleteSourceGrantRequest(name="sources/default/grants"), "name"),
]  # fmt: skip

PUBLIC_MODULES = (
    api_key_pb2,
    auth_pb2,
    collection_pb2,
    document_pb2,
    grant_pb2,
    operation_pb2,
    search_pb2,
    source_pb2,
    user_pb2,
)


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


@pytest.mark.parametrize(
    ("rpc", "method", "request_message", "field"), [case for case in CASES if case[1]]
)
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
        for module in PUBLIC_MODULES
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


def test_bytes_that_are_not_the_request_message_are_invalid_argument(api: Api) -> None:
    call = api.channel.unary_unary("/semantik.v1.OperationService/ListOperations")
    with pytest.raises(grpc.RpcError) as error:
        call(bytes.fromhex("0539"), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _field_violations(error.value) == ["request"]
    assert "DecodeError" not in (error.value.details() or "")


def test_a_huge_bad_value_is_not_echoed_whole(api: Api) -> None:
    with pytest.raises(grpc.RpcError) as error:
        api.collections.GetCollection(
            collection_pb2.GetCollectionRequest(name="../" * 30000), timeout=30
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(error.value.details() or "") < 1000


def test_json_path_with_invalid_utf8_is_400(json_api: JsonApi) -> None:
    response = json_api.call("GET", "/v1/collections/%ff")
    assert response.status == 400, response.body
