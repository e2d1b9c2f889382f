"""The authorisation matrix: every public RPC x role x collection relation x credential.

Generated from the policy table (`services/gateway/security/policy.py`): the
expected outcome of each case is derived here from the RPC's rule (its access
kind and permission), written independently of the gateway's Principal code,
and each case is a real call through the real mesh. A public RPC without a
rule, or without a request below, fails the suite.

Subjects are users with the global roles admin, editor and viewer; each holds
a different relation to four collections (owner, editor or viewer grant, or
none: a foreign collection), and calls with an access token or with an API
key scoped to that collection; anonymous calls complete the matrix.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

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
from semantik_runner.mesh import Mesh
from services.gateway.security.policy import POLICY, Access, Rule
from services.gateway.security.principal import Permission
from tests.conftest import login
from tests.e2e.conftest import Api, api_for
from tests.security.conftest import REPORT, outcome

PASSWORD = "matrix password 0123"
# SourceService and the source side of imports have their own matrix
# (test_source_matrix.py); here every subject may read this one.
SHARED_SOURCE = "sources/mx-shared"
ROLES = {
    "admin": user_pb2.ROLE_ADMIN,
    "editor": user_pb2.ROLE_EDITOR,
    "viewer": user_pb2.ROLE_VIEWER,
}
RELATIONS = {
    "owner": grant_pb2.COLLECTION_ROLE_OWNER,
    "editor": grant_pb2.COLLECTION_ROLE_EDITOR,
    "viewer": grant_pb2.COLLECTION_ROLE_VIEWER,
    "foreign": None,
}
RELATION_PERMISSIONS = {
    "owner": {Permission.READ, Permission.WRITE, Permission.MANAGE},
    "editor": {Permission.READ, Permission.WRITE},
    "viewer": {Permission.READ},
    "foreign": set(),
}
ALL_VERBS = [
    api_key_pb2.API_KEY_VERB_READ,
    api_key_pb2.API_KEY_VERB_WRITE,
    api_key_pb2.API_KEY_VERB_MANAGE,
]
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
OK = grpc.StatusCode.OK
# Its relations are to sources, not collections: test_source_matrix.py.
SOURCE_SERVICE = "/semantik.v1.SourceService/"


def public_methods() -> list[str]:
    return sorted(
        f"/{service.full_name}/{method.name}"
        for module in PUBLIC_MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    )


@dataclass
class Subject:
    user_id: str
    role: str
    tokens: auth_pb2.AuthTokens | None = None
    keys: dict[str, str] = field(default_factory=dict)  # collection id -> key secret


@dataclass
class World:
    """Users, collections and keys of the matrix, made once by the bootstrap admin."""

    mesh: Mesh
    admin: Api
    corpus: Path
    subjects: dict[str, Subject]
    collections: dict[str, str]  # relation -> collection id
    documents: dict[str, str]  # collection id -> a document name
    operations: dict[str, str]  # collection id -> an operation name
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def token(self, subject: Subject) -> str:
        if subject.tokens is None:
            subject.tokens = login(self.mesh.grpc_target, subject.user_id, PASSWORD)
        return subject.tokens.access_token

    def new_collection(self, relation: str, subject: Subject) -> str:
        collection_id = self.unique("mx-fresh")
        self.admin.collections.CreateCollection(
            collection_pb2.CreateCollectionRequest(
                collection_id=collection_id, collection=collection_pb2.Collection()
            ),
            timeout=30,
        )
        grant(self.admin, collection_id, subject.user_id, RELATIONS[relation])
        return collection_id

    def key_for(self, subject: Subject, collection_id: str) -> str:
        if collection_id not in subject.keys:
            owner = api_for(self.mesh.grpc_target, self.token(subject))
            created = owner.api_keys.CreateApiKey(
                api_key_pb2.CreateApiKeyRequest(
                    api_key=api_key_pb2.ApiKey(
                        display_name="matrix",
                        collections=[f"collections/{collection_id}"],
                        verbs=ALL_VERBS,
                    )
                ),
                timeout=30,
            )
            owner.channel.close()
            subject.keys[collection_id] = created.secret
        return subject.keys[collection_id]


def grant(admin: Api, collection_id: str, user_id: str, role: Any) -> None:
    if role is None:
        return
    admin.grants.SetGrant(
        grant_pb2.SetGrantRequest(
            parent=f"collections/{collection_id}", user=f"users/{user_id}", role=role
        ),
        timeout=30,
    )


@pytest.fixture(scope="module")
def world(mesh: Mesh, api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    corpus = tmp_path_factory.mktemp("matrix-corpus")
    (corpus / "note.txt").write_text(
        "Matrix note: the authorisation matrix covers every public call.\n", encoding="utf-8"
    )
    subjects = {}
    for role, role_value in ROLES.items():
        user_id = f"mx-{role}"
        api.users.CreateUser(
            user_pb2.CreateUserRequest(
                user_id=user_id, user=user_pb2.User(role=role_value), password=PASSWORD
            ),
            timeout=60,
        )
        subjects[role] = Subject(user_id, role)
    api.users.CreateUser(
        user_pb2.CreateUserRequest(
            user_id="mx-bystander", user=user_pb2.User(role=user_pb2.ROLE_VIEWER), password=PASSWORD
        ),
        timeout=60,
    )
    # Every subject may read the corpus's source, so the collection decides.
    api.sources.CreateSource(
        source_pb2.CreateSourceRequest(
            source_id=SHARED_SOURCE.removeprefix("sources/"),
            source=source_pb2.Source(path=str(corpus)),
        ),
        timeout=30,
    )
    for subject in subjects.values():
        api.sources.SetSourceGrant(
            source_pb2.SetSourceGrantRequest(
                parent=SHARED_SOURCE,
                user=f"users/{subject.user_id}",
                role=source_pb2.SOURCE_ROLE_READER,
            ),
            timeout=30,
        )
    collections, documents, operations = {}, {}, {}
    for relation, grant_role in RELATIONS.items():
        collection_id = f"mx-{relation}"
        api.collections.CreateCollection(
            collection_pb2.CreateCollectionRequest(
                collection_id=collection_id, collection=collection_pb2.Collection()
            ),
            timeout=30,
        )
        for subject in subjects.values():
            grant(api, collection_id, subject.user_id, grant_role)
        operation = api.documents.ImportDocuments(
            document_pb2.ImportDocumentsRequest(
                parent=f"collections/{collection_id}", source=SHARED_SOURCE
            ),
            timeout=30,
        )
        assert api.wait_done(operation.name).state == operation_pb2.OPERATION_STATE_SUCCEEDED
        listed = api.documents.ListDocuments(
            document_pb2.ListDocumentsRequest(parent=f"collections/{collection_id}"), timeout=30
        )
        collections[relation] = collection_id
        documents[collection_id] = listed.documents[0].name
        operations[collection_id] = operation.name
    yield World(mesh, api, corpus, subjects, collections, documents, operations)


# What a call needs to succeed when it is allowed: (stub method, request) for
# a subject acting on a collection. Requests that change state get fresh
# objects, so an allowed call never disturbs the next case.
Call = tuple[Callable[[Api], Any], Any]
RequestFactory = Callable[[World, Subject, str, str], Call]


def _collection(world: World, subject: Subject, cid: str, cred: str) -> str:
    return f"collections/{cid}"


def _delete_grant(world: World, subject: Subject, cid: str, cred: str) -> Call:
    grant(world.admin, cid, "mx-bystander", grant_pb2.COLLECTION_ROLE_VIEWER)
    return (
        lambda a: a.grants.DeleteGrant,
        grant_pb2.DeleteGrantRequest(name=f"collections/{cid}/grants/mx-bystander"),
    )


def _delete_user(world: World, subject: Subject, cid: str, cred: str) -> Call:
    user_id = world.unique("mx-doomed")
    world.admin.users.CreateUser(
        user_pb2.CreateUserRequest(
            user_id=user_id, user=user_pb2.User(role=user_pb2.ROLE_VIEWER), password=PASSWORD
        ),
        timeout=60,
    )
    return lambda a: a.users.DeleteUser, user_pb2.DeleteUserRequest(name=f"users/{user_id}")


def _delete_api_key(world: World, subject: Subject, cid: str, cred: str) -> Call:
    owner = api_for(world.mesh.grpc_target, world.token(subject))
    created = owner.api_keys.CreateApiKey(
        api_key_pb2.CreateApiKeyRequest(
            api_key=api_key_pb2.ApiKey(
                collections=[f"collections/{cid}"], verbs=[api_key_pb2.API_KEY_VERB_READ]
            )
        ),
        timeout=30,
    )
    owner.channel.close()
    return (
        lambda a: a.api_keys.DeleteApiKey,
        api_key_pb2.DeleteApiKeyRequest(name=created.api_key.name),
    )


def _refresh(world: World, subject: Subject, cid: str, cred: str) -> str:
    return login(world.mesh.grpc_target, subject.user_id, PASSWORD).refresh_token


REQUESTS: dict[str, RequestFactory] = {
    "/semantik.v1.AuthService/BootstrapAdmin": lambda w, s, c, k: (
        lambda a: a.auth.BootstrapAdmin,
        auth_pb2.BootstrapAdminRequest(
            bootstrap_token=w.mesh.bootstrap_token, user_id="mx-usurper", password=PASSWORD
        ),
    ),
    "/semantik.v1.AuthService/Login": lambda w, s, c, k: (
        lambda a: a.auth.Login,
        auth_pb2.LoginRequest(user_id=s.user_id, password=PASSWORD),
    ),
    "/semantik.v1.AuthService/RefreshToken": lambda w, s, c, k: (
        lambda a: a.auth.RefreshToken,
        auth_pb2.RefreshTokenRequest(refresh_token=_refresh(w, s, c, k)),
    ),
    "/semantik.v1.AuthService/Logout": lambda w, s, c, k: (
        lambda a: a.auth.Logout,
        auth_pb2.LogoutRequest(refresh_token=_refresh(w, s, c, k)),
    ),
    "/semantik.v1.AuthService/ChangePassword": lambda w, s, c, k: (
        lambda a: a.auth.ChangePassword,
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=PASSWORD),
    ),
    "/semantik.v1.AuthService/GetCurrentUser": lambda w, s, c, k: (
        lambda a: a.auth.GetCurrentUser,
        auth_pb2.GetCurrentUserRequest(),
    ),
    "/semantik.v1.UserService/CreateUser": lambda w, s, c, k: (
        lambda a: a.users.CreateUser,
        user_pb2.CreateUserRequest(
            user_id=w.unique("mx-new-user"),
            user=user_pb2.User(role=user_pb2.ROLE_VIEWER),
            password=PASSWORD,
        ),
    ),
    "/semantik.v1.UserService/GetUser": lambda w, s, c, k: (
        lambda a: a.users.GetUser,
        user_pb2.GetUserRequest(name="users/mx-bystander"),
    ),
    "/semantik.v1.UserService/ListUsers": lambda w, s, c, k: (
        lambda a: a.users.ListUsers,
        user_pb2.ListUsersRequest(),
    ),
    "/semantik.v1.UserService/DeleteUser": _delete_user,
    "/semantik.v1.ApiKeyService/CreateApiKey": lambda w, s, c, k: (
        lambda a: a.api_keys.CreateApiKey,
        api_key_pb2.CreateApiKeyRequest(
            api_key=api_key_pb2.ApiKey(
                collections=[f"collections/{c}"], verbs=[api_key_pb2.API_KEY_VERB_READ]
            )
        ),
    ),
    "/semantik.v1.ApiKeyService/ListApiKeys": lambda w, s, c, k: (
        lambda a: a.api_keys.ListApiKeys,
        api_key_pb2.ListApiKeysRequest(),
    ),
    "/semantik.v1.ApiKeyService/DeleteApiKey": _delete_api_key,
    "/semantik.v1.GrantService/SetGrant": lambda w, s, c, k: (
        lambda a: a.grants.SetGrant,
        grant_pb2.SetGrantRequest(
            parent=f"collections/{c}",
            user="users/mx-bystander",
            role=grant_pb2.COLLECTION_ROLE_VIEWER,
        ),
    ),
    "/semantik.v1.GrantService/ListGrants": lambda w, s, c, k: (
        lambda a: a.grants.ListGrants,
        grant_pb2.ListGrantsRequest(parent=f"collections/{c}"),
    ),
    "/semantik.v1.GrantService/DeleteGrant": _delete_grant,
    "/semantik.v1.CollectionService/CreateCollection": lambda w, s, c, k: (
        lambda a: a.collections.CreateCollection,
        collection_pb2.CreateCollectionRequest(
            collection_id=w.unique("mx-created"), collection=collection_pb2.Collection()
        ),
    ),
    "/semantik.v1.CollectionService/GetCollection": lambda w, s, c, k: (
        lambda a: a.collections.GetCollection,
        collection_pb2.GetCollectionRequest(name=f"collections/{c}"),
    ),
    "/semantik.v1.CollectionService/ListCollections": lambda w, s, c, k: (
        lambda a: a.collections.ListCollections,
        collection_pb2.ListCollectionsRequest(page_size=1000),
    ),
    "/semantik.v1.CollectionService/DeleteCollection": lambda w, s, c, k: (
        lambda a: a.collections.DeleteCollection,
        collection_pb2.DeleteCollectionRequest(name=f"collections/{c}"),
    ),
    "/semantik.v1.DocumentService/ImportDocuments": lambda w, s, c, k: (
        lambda a: a.documents.ImportDocuments,
        document_pb2.ImportDocumentsRequest(parent=f"collections/{c}", source=SHARED_SOURCE),
    ),
    # A client stream of one file.
    "/semantik.v1.DocumentService/UploadDocuments": lambda w, s, c, k: (
        lambda a: (
            lambda request, timeout: a.documents.UploadDocuments(iter([request]), timeout=timeout)
        ),
        document_pb2.UploadDocumentsRequest(
            parent=f"collections/{c}", file_name="uploaded.txt", data=b"Uploaded note.\n", last=True
        ),
    ),
    "/semantik.v1.DocumentService/GetDocument": lambda w, s, c, k: (
        lambda a: a.documents.GetDocument,
        document_pb2.GetDocumentRequest(name=w.documents[c]),
    ),
    "/semantik.v1.DocumentService/ListDocuments": lambda w, s, c, k: (
        lambda a: a.documents.ListDocuments,
        document_pb2.ListDocumentsRequest(parent=f"collections/{c}"),
    ),
    "/semantik.v1.OperationService/GetOperation": lambda w, s, c, k: (
        lambda a: a.operations.GetOperation,
        operation_pb2.GetOperationRequest(name=w.operations[c]),
    ),
    "/semantik.v1.OperationService/ListOperations": lambda w, s, c, k: (
        lambda a: a.operations.ListOperations,
        operation_pb2.ListOperationsRequest(page_size=1000),
    ),
    # A stream: read to its end (one message, the operation is done).
    "/semantik.v1.OperationService/WatchOperation": lambda w, s, c, k: (
        lambda a: (
            lambda request, timeout: list(a.operations.WatchOperation(request, timeout=timeout))
        ),
        operation_pb2.WatchOperationRequest(name=w.operations[c]),
    ),
    "/semantik.v1.OperationService/CancelOperation": lambda w, s, c, k: (
        lambda a: a.operations.CancelOperation,
        operation_pb2.CancelOperationRequest(name=w.operations[c]),
    ),
    "/semantik.v1.OperationService/RetryOperation": lambda w, s, c, k: (
        lambda a: a.operations.RetryOperation,
        operation_pb2.RetryOperationRequest(name=w.operations[c]),
    ),
    "/semantik.v1.SearchService/Search": lambda w, s, c, k: (
        lambda a: a.search.Search,
        search_pb2.SearchRequest(collection=f"collections/{c}", query="authorisation matrix"),
    ),
}

# The allowed outcome of an RPC when it is not OK: bootstrapping is spent once an admin exists.
# The matrix's operations are done and had no failed document: allowed
# callers get past authorisation to the operation's own precondition.
ALLOWED_OUTCOME = {
    "/semantik.v1.AuthService/BootstrapAdmin": grpc.StatusCode.FAILED_PRECONDITION,
    "/semantik.v1.OperationService/CancelOperation": grpc.StatusCode.FAILED_PRECONDITION,
    "/semantik.v1.OperationService/RetryOperation": grpc.StatusCode.FAILED_PRECONDITION,
}


def expected(
    method: str, rule: Rule, role: str | None, relation: str, cred: str
) -> grpc.StatusCode:
    """The outcome the policy promises, derived from the rule's kind and permission."""
    allowed = ALLOWED_OUTCOME.get(method, OK)
    if rule.access is Access.PUBLIC:
        return allowed
    if role is None:
        return grpc.StatusCode.UNAUTHENTICATED
    if rule.access in (Access.USER, Access.ADMIN) and cred == "key":
        return grpc.StatusCode.PERMISSION_DENIED
    if rule.access is Access.ADMIN:
        return allowed if role == "admin" else grpc.StatusCode.PERMISSION_DENIED
    if rule.access in (Access.USER, Access.LISTING):
        return allowed
    if rule.access is Access.CREATE_COLLECTION:
        # A key is scoped to existing collections only, never to the new id.
        creator = role in ("admin", "editor") and cred == "token"
        return allowed if creator else grpc.StatusCode.PERMISSION_DENIED
    assert rule.access in (Access.COLLECTION, Access.OPERATION) and rule.permission is not None
    permissions = set(Permission) if role == "admin" else RELATION_PERMISSIONS[relation]
    if Permission.READ not in permissions:
        return grpc.StatusCode.NOT_FOUND
    return allowed if rule.permission in permissions else grpc.StatusCode.PERMISSION_DENIED


CASES = [
    (method, role, relation, cred)
    for method in public_methods()
    if not method.startswith(SOURCE_SERVICE)
    for role, relation, cred in [
        *itertools.product(ROLES, RELATIONS, ("token", "key")),
        (None, "foreign", "none"),
    ]
]


def test_every_public_rpc_has_a_rule_and_a_request() -> None:
    methods = set(public_methods())
    assert methods - set(POLICY) == set(), "public RPCs without an access rule"
    assert set(POLICY) - methods == set(), "rules for RPCs that do not exist"
    collection_methods = {m for m in methods if not m.startswith(SOURCE_SERVICE)}
    assert collection_methods - set(REQUESTS) == set(), "public RPCs without a matrix request"


def _readable(world: World, subject: Subject, cred: str, relation: str) -> set[str] | None:
    if subject.role == "admin" and cred == "token":
        return None
    if cred == "key":
        return (
            {world.collections[relation]}
            if RELATION_PERMISSIONS[relation] or subject.role == "admin"
            else set()
        )
    return {
        world.collections[rel]
        for rel, perms in RELATION_PERMISSIONS.items()
        if Permission.READ in perms
    }


def _visible(response: Any) -> set[str]:
    if hasattr(response, "collections"):
        return {c.name.removeprefix("collections/") for c in response.collections}
    return {op.collection.removeprefix("collections/") for op in response.operations}


@pytest.mark.parametrize(("method", "role", "relation", "cred"), CASES)
def test_matrix(world: World, method: str, role: str | None, relation: str, cred: str) -> None:
    rule = POLICY[method]
    want = expected(method, rule, role, relation, cred)
    # Anonymous calls carry no credential; public RPCs still get a real user's input.
    subject = world.subjects[role or "viewer"]
    collection_id = world.collections[relation]
    if want == OK and method.endswith("/DeleteCollection"):
        collection_id = world.new_collection(relation, subject)
    stub, request = REQUESTS[method](world, subject, collection_id, cred)
    credential = ""
    if cred == "token":
        credential = world.token(subject)
    elif cred == "key":
        credential = world.key_for(subject, collection_id)
    response, got, detail = outcome(world.mesh.grpc_target, credential, stub, request)
    REPORT["matrix_cases"] += 1
    if method.endswith("/ChangePassword") and got == OK:
        subject.tokens = None  # every token of the user is revoked by design
    assert got == want, f"{method} as {role}/{relation}/{cred}: {got} {detail}"
    if got == OK and rule.access is Access.LISTING and role is not None:
        readable = _readable(world, subject, cred, relation)
        if readable is not None:
            visible = _visible(response) & {c for c in world.collections.values()}
            assert visible <= readable, f"{method} leaked {visible - readable}"
