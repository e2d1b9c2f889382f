"""Tokens and keys against the real mesh: forged, expired, wrong-key, replayed,
revoked and out-of-scope credentials, and what a stranger can learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import timestamp_pb2

from semantik.v1 import (
    api_key_pb2,
    auth_pb2,
    collection_pb2,
    collection_pb2_grpc,
    document_pb2,
    grant_pb2,
    operation_pb2,
    search_pb2,
    source_pb2,
    user_pb2,
)
from semantik_runner import secret_files
from semantik_runner.mesh import JWT_KEY_FILE, Mesh
from services.gateway.security.credentials import AccessTokens, InvalidCredential
from services.gateway.security.signing_keys import SigningKeyError, SigningKeys
from tests.conftest import login
from tests.e2e.conftest import Api, api_for

PASSWORD = "credentials password 42"
REPO = Path(__file__).resolve().parents[2]


def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.fixture(scope="module")
def people(
    mesh: Mesh, api: Api, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Two editors: `alice` owns `cr-alice` (with one document), `bob` owns nothing."""
    for user_id in ("cr-alice", "cr-bob"):
        api.users.CreateUser(
            user_pb2.CreateUserRequest(
                user_id=user_id, user=user_pb2.User(role=user_pb2.ROLE_EDITOR), password=PASSWORD
            ),
            timeout=60,
        )
    alice = api_for(mesh.grpc_target, login(mesh.grpc_target, "cr-alice", PASSWORD).access_token)
    for collection_id in ("cr-alice", "cr-alice-two"):
        alice.collections.CreateCollection(
            collection_pb2.CreateCollectionRequest(
                collection_id=collection_id, collection=collection_pb2.Collection()
            ),
            timeout=30,
        )
    corpus = tmp_path_factory.mktemp("cr-corpus")
    (corpus / "secret.txt").write_text("Alice's secret plans for the garden.\n", encoding="utf-8")
    # Editors import from sources an admin registered for them.
    api.sources.CreateSource(
        source_pb2.CreateSourceRequest(
            source_id="cr-corpus",
            source=source_pb2.Source(path=str(corpus), owner="users/cr-alice"),
        ),
        timeout=30,
    )
    operation = alice.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent="collections/cr-alice", source="sources/cr-corpus"
        ),
        timeout=30,
    )
    assert alice.wait_done(operation.name).state == operation_pb2.OPERATION_STATE_SUCCEEDED
    document = alice.documents.ListDocuments(
        document_pb2.ListDocumentsRequest(parent="collections/cr-alice"), timeout=30
    ).documents[0]
    alice.channel.close()
    yield {"operation": operation.name, "document": document.name}


def _mesh_keys(mesh: Mesh) -> SigningKeys:
    path = secret_files.path_of(mesh.data_dir, JWT_KEY_FILE)
    return SigningKeys.parse(path.read_text(encoding="ascii").strip())


def _as(mesh: Mesh, token: str) -> tuple[grpc.StatusCode, str]:
    client = api_for(mesh.grpc_target, token)
    try:
        return _code(
            lambda: client.collections.ListCollections(
                collection_pb2.ListCollectionsRequest(), timeout=30
            )
        )
    finally:
        client.channel.close()


def test_forged_expired_and_malformed_tokens_are_unauthenticated(
    mesh: Mesh, admin_token: str
) -> None:
    keys = _mesh_keys(mesh)
    kid = keys.current_kid
    # A real admin token works; each variant below differs from it by one flaw.
    assert _as(mesh, admin_token)[0] == grpc.StatusCode.OK
    real = jwt.decode(admin_token, keys.current, algorithms=["HS256"], issuer="semantik")

    def signed(secret: Any = keys.current, key_id: str = kid, **change: Any) -> str:
        algorithm = "HS256" if secret is not None else "none"
        return jwt.encode({**real, **change}, secret, algorithm, headers={"kid": key_id})

    now = int(time.time())
    assert _as(mesh, signed())[0] == grpc.StatusCode.OK
    forged = {
        "wrong key, right kid": signed(b"x" * 48),
        "unknown kid": signed(key_id="nope"),
        "expired": signed(iat=now - 7200, exp=now - 3600),
        "alg none": signed(None),
        "not an access token": signed(typ="refresh"),
        "stale version": signed(ver=real["ver"] + 1),
        "no such user": signed(sub="ghost"),
        "other issuer": signed(iss="elsewhere"),
        "garbage": "not.a.jwt",
    }
    for what, token in forged.items():
        code, _ = _as(mesh, token)
        assert code == grpc.StatusCode.UNAUTHENTICATED, what


def test_a_tampered_token_is_unauthenticated(mesh: Mesh, people: dict[str, str]) -> None:
    token = login(mesh.grpc_target, "cr-bob", PASSWORD).access_token
    header, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["sub"] = "admin"
    forged_payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert _as(mesh, token)[0] == grpc.StatusCode.OK
    assert _as(mesh, f"{header}.{forged_payload}.{signature}")[0] == grpc.StatusCode.UNAUTHENTICATED


def test_no_credentials_and_bad_schemes(mesh: Mesh) -> None:
    channel = grpc.insecure_channel(mesh.grpc_target)
    stub = collection_pb2_grpc.CollectionServiceStub(channel)
    request = collection_pb2.ListCollectionsRequest()
    for metadata in [
        (),
        (("authorization", "Basic YWRtaW46YWRtaW4="),),
        (("authorization", "Bearer"),),
    ]:
        code, _ = _code(lambda m=metadata: stub.ListCollections(request, metadata=m, timeout=30))
        assert code == grpc.StatusCode.UNAUTHENTICATED, metadata
    channel.close()


def _refresh(mesh: Mesh, refresh_token: str) -> tuple[grpc.StatusCode, auth_pb2.AuthTokens | None]:
    client = api_for(mesh.grpc_target)
    try:
        return grpc.StatusCode.OK, client.auth.RefreshToken(
            auth_pb2.RefreshTokenRequest(refresh_token=refresh_token), timeout=30
        )
    except grpc.RpcError as error:
        return error.code(), None
    finally:
        client.channel.close()


def test_refresh_rotates_and_a_replayed_token_revokes_the_sign_in(
    mesh: Mesh, people: dict[str, str]
) -> None:
    first = login(mesh.grpc_target, "cr-bob", PASSWORD)
    code, second = _refresh(mesh, first.refresh_token)
    assert code == grpc.StatusCode.OK and second is not None
    assert second.refresh_token != first.refresh_token
    assert _as(mesh, second.access_token)[0] == grpc.StatusCode.OK
    # Replaying the spent token is detected and kills the whole sign-in.
    assert _refresh(mesh, first.refresh_token)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert _refresh(mesh, second.refresh_token)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert _as(mesh, second.access_token)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert _as(mesh, first.access_token)[0] == grpc.StatusCode.UNAUTHENTICATED
    # Another sign-in of the same user is untouched.
    assert (
        _as(mesh, login(mesh.grpc_target, "cr-bob", PASSWORD).access_token)[0] == grpc.StatusCode.OK
    )
    assert _refresh(mesh, "smr_" + "A" * 43)[0] == grpc.StatusCode.UNAUTHENTICATED


def test_logout_revokes_the_session(mesh: Mesh, people: dict[str, str]) -> None:
    tokens = login(mesh.grpc_target, "cr-bob", PASSWORD)
    other = login(mesh.grpc_target, "cr-bob", PASSWORD)
    # Used once first, so the gateway's principal cache holds this sign-in.
    assert _as(mesh, tokens.access_token)[0] == grpc.StatusCode.OK
    client = api_for(mesh.grpc_target, tokens.access_token)
    client.auth.Logout(auth_pb2.LogoutRequest(refresh_token=tokens.refresh_token), timeout=30)
    client.channel.close()
    assert _as(mesh, tokens.access_token)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert _refresh(mesh, tokens.refresh_token)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert _as(mesh, other.access_token)[0] == grpc.StatusCode.OK


def test_password_change_revokes_every_token(api: Api, mesh: Mesh) -> None:
    api.users.CreateUser(
        user_pb2.CreateUserRequest(
            user_id="cr-carol", user=user_pb2.User(role=user_pb2.ROLE_VIEWER), password=PASSWORD
        ),
        timeout=60,
    )
    one = login(mesh.grpc_target, "cr-carol", PASSWORD)
    two = login(mesh.grpc_target, "cr-carol", PASSWORD)
    for tokens in (one, two):  # cached by the gateway before the change
        assert _as(mesh, tokens.access_token)[0] == grpc.StatusCode.OK
    client = api_for(mesh.grpc_target, one.access_token)
    wrong = _code(
        lambda: client.auth.ChangePassword(
            auth_pb2.ChangePasswordRequest(
                current_password="wrong password!!", new_password="x" * 20
            ),
            timeout=30,
        )
    )
    assert wrong[0] == grpc.StatusCode.INVALID_ARGUMENT
    client.auth.ChangePassword(
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="a new password 7"),
        timeout=30,
    )
    client.channel.close()
    for tokens in (one, two):
        assert _as(mesh, tokens.access_token)[0] == grpc.StatusCode.UNAUTHENTICATED
        assert _refresh(mesh, tokens.refresh_token)[0] == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as error:
        login(mesh.grpc_target, "cr-carol", PASSWORD)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _as(mesh, login(mesh.grpc_target, "cr-carol", "a new password 7").access_token)[0] == (
        grpc.StatusCode.OK
    )


def test_a_deleted_users_token_stops_working(api: Api, mesh: Mesh) -> None:
    api.users.CreateUser(
        user_pb2.CreateUserRequest(
            user_id="cr-dave", user=user_pb2.User(role=user_pb2.ROLE_VIEWER), password=PASSWORD
        ),
        timeout=60,
    )
    token = login(mesh.grpc_target, "cr-dave", PASSWORD).access_token
    assert _as(mesh, token)[0] == grpc.StatusCode.OK
    api.users.DeleteUser(user_pb2.DeleteUserRequest(name="users/cr-dave"), timeout=30)
    assert _as(mesh, token)[0] == grpc.StatusCode.UNAUTHENTICATED


def test_grant_changes_take_effect_on_the_next_call(
    api: Api, mesh: Mesh, people: dict[str, str]
) -> None:
    """The gateway caches resolved callers; a grant set or deleted still counts at once."""
    api.users.CreateUser(
        user_pb2.CreateUserRequest(
            user_id="cr-erin", user=user_pb2.User(role=user_pb2.ROLE_VIEWER), password=PASSWORD
        ),
        timeout=60,
    )
    erin = api_for(mesh.grpc_target, login(mesh.grpc_target, "cr-erin", PASSWORD).access_token)
    alice = api_for(mesh.grpc_target, login(mesh.grpc_target, "cr-alice", PASSWORD).access_token)
    search = search_pb2.SearchRequest(collection="collections/cr-alice", query="garden plans")
    try:
        assert _code(lambda: erin.search.Search(search, timeout=30))[0] == (
            grpc.StatusCode.NOT_FOUND
        )
        alice.grants.SetGrant(
            grant_pb2.SetGrantRequest(
                parent="collections/cr-alice",
                user="users/cr-erin",
                role=grant_pb2.COLLECTION_ROLE_VIEWER,
            ),
            timeout=30,
        )
        assert erin.search.Search(search, timeout=30).results
        alice.grants.DeleteGrant(
            grant_pb2.DeleteGrantRequest(name="collections/cr-alice/grants/cr-erin"), timeout=30
        )
        assert _code(lambda: erin.search.Search(search, timeout=30))[0] == (
            grpc.StatusCode.NOT_FOUND
        )
    finally:
        erin.channel.close()
        alice.channel.close()


def test_login_does_not_reveal_which_users_exist(mesh: Mesh, people: dict[str, str]) -> None:
    client = api_for(mesh.grpc_target)
    wrong_password = _code(
        lambda: client.auth.Login(
            auth_pb2.LoginRequest(user_id="cr-bob", password="not the password"), timeout=30
        )
    )
    no_user = _code(
        lambda: client.auth.Login(
            auth_pb2.LoginRequest(user_id="cr-nobody", password="not the password"), timeout=30
        )
    )
    client.channel.close()
    assert wrong_password == no_user
    assert wrong_password[0] == grpc.StatusCode.UNAUTHENTICATED


def test_bootstrap_needs_the_token_and_works_once(mesh: Mesh) -> None:
    client = api_for(mesh.grpc_target)
    request = auth_pb2.BootstrapAdminRequest(
        bootstrap_token="wrong", user_id="cr-usurper", password=PASSWORD
    )
    assert _code(lambda: client.auth.BootstrapAdmin(request, timeout=30))[0] == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    request.bootstrap_token = mesh.bootstrap_token
    assert _code(lambda: client.auth.BootstrapAdmin(request, timeout=30))[0] == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    client.channel.close()


def _key(mesh: Mesh, user_id: str, collections: list[str], verbs: list[Any], **extra: Any) -> str:
    client = api_for(mesh.grpc_target, login(mesh.grpc_target, user_id, PASSWORD).access_token)
    created = client.api_keys.CreateApiKey(
        api_key_pb2.CreateApiKeyRequest(
            api_key=api_key_pb2.ApiKey(collections=collections, verbs=verbs, **extra)
        ),
        timeout=30,
    )
    client.channel.close()
    secret: str = created.secret
    listed = api_for(mesh.grpc_target, login(mesh.grpc_target, user_id, PASSWORD).access_token)
    keys = listed.api_keys.ListApiKeys(api_key_pb2.ListApiKeysRequest(), timeout=30)
    listed.channel.close()
    # The secret is shown once: listings carry no part of it beyond the public id.
    assert created.api_key.name in {k.name for k in keys.api_keys}
    assert secret not in str(keys)
    return secret


def test_api_key_scopes(mesh: Mesh, people: dict[str, str], tmp_path: Path) -> None:
    key = _key(mesh, "cr-alice", ["collections/cr-alice"], [api_key_pb2.API_KEY_VERB_READ])
    client = api_for(mesh.grpc_target, key)
    search = search_pb2.SearchRequest(collection="collections/cr-alice", query="garden plans")
    assert client.search.Search(search, timeout=30).results
    denied = _code(
        lambda: client.documents.ImportDocuments(
            document_pb2.ImportDocumentsRequest(
                parent="collections/cr-alice", source_path=str(tmp_path)
            ),
            timeout=30,
        )
    )
    assert denied[0] == grpc.StatusCode.PERMISSION_DENIED
    # Alice can read cr-alice-two, her key cannot: to the key it does not exist.
    hidden = _code(
        lambda: client.collections.GetCollection(
            collection_pb2.GetCollectionRequest(name="collections/cr-alice-two"), timeout=30
        )
    )
    assert hidden[0] == grpc.StatusCode.NOT_FOUND
    listed = client.collections.ListCollections(collection_pb2.ListCollectionsRequest(), timeout=30)
    assert [c.name for c in listed.collections] == ["collections/cr-alice"]
    # Keys cannot manage accounts or keys.
    assert (
        _code(lambda: client.api_keys.ListApiKeys(api_key_pb2.ListApiKeysRequest(), timeout=30))[0]
        == grpc.StatusCode.PERMISSION_DENIED
    )
    client.channel.close()


def test_api_key_expiry_and_revocation(mesh: Mesh, people: dict[str, str]) -> None:
    soon = timestamp_pb2.Timestamp(seconds=int(time.time()) + 2)
    expiring = _key(
        mesh,
        "cr-alice",
        ["collections/cr-alice"],
        [api_key_pb2.API_KEY_VERB_READ],
        expire_time=soon,
    )
    assert _as(mesh, expiring)[0] == grpc.StatusCode.OK
    time.sleep(max(0.0, soon.seconds - time.time()) + 1.1)
    assert _as(mesh, expiring)[0] == grpc.StatusCode.UNAUTHENTICATED

    revoked = _key(mesh, "cr-alice", ["collections/cr-alice"], [api_key_pb2.API_KEY_VERB_READ])
    assert _as(mesh, revoked)[0] == grpc.StatusCode.OK
    key_id = revoked.split("_")[1]
    owner = api_for(mesh.grpc_target, login(mesh.grpc_target, "cr-alice", PASSWORD).access_token)
    # Another user cannot revoke it; to them it does not exist.
    bob = api_for(mesh.grpc_target, login(mesh.grpc_target, "cr-bob", PASSWORD).access_token)
    assert (
        _code(
            lambda: bob.api_keys.DeleteApiKey(
                api_key_pb2.DeleteApiKeyRequest(name=f"apiKeys/{key_id}"), timeout=30
            )
        )[0]
        == grpc.StatusCode.NOT_FOUND
    )
    owner.api_keys.DeleteApiKey(
        api_key_pb2.DeleteApiKeyRequest(name=f"apiKeys/{key_id}"), timeout=30
    )
    assert _as(mesh, revoked)[0] == grpc.StatusCode.UNAUTHENTICATED
    # A key with the right id and a wrong secret is refused.
    assert _as(mesh, f"smk_{key_id}_{'A' * 43}")[0] == grpc.StatusCode.UNAUTHENTICATED
    owner.channel.close()
    bob.channel.close()


def _json(mesh: Mesh, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(mesh.json_url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_api_keys_and_tokens_work_over_json(mesh: Mesh, people: dict[str, str]) -> None:
    key = _key(mesh, "cr-alice", ["collections/cr-alice"], [api_key_pb2.API_KEY_VERB_READ])
    token = login(mesh.grpc_target, "cr-alice", PASSWORD).access_token
    for headers in (
        {"x-api-key": key},
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"Bearer {token}"},
    ):
        status, body = _json(mesh, "/v1/collections/cr-alice", headers)
        assert status == 200, (headers, body)
        assert body["name"] == "collections/cr-alice"
    assert _json(mesh, "/v1/collections/cr-alice", {})[0] == 401
    assert _json(mesh, "/v1/collections/cr-alice", {"x-api-key": "smk_garbage"})[0] == 401


def test_a_stranger_cannot_learn_that_documents_exist(mesh: Mesh, people: dict[str, str]) -> None:
    """Every RPC naming alice's collection answers bob exactly as for one that never existed."""
    bob = api_for(mesh.grpc_target, login(mesh.grpc_target, "cr-bob", PASSWORD).access_token)
    real_document = people["document"]
    ghost_document = "collections/cr-ghost/documents/" + real_document.rsplit("/", 1)[1]

    def probes(collection: str, document: str, operation: str) -> list[Any]:
        return [
            lambda: bob.collections.GetCollection(
                collection_pb2.GetCollectionRequest(name=collection), timeout=30
            ),
            lambda: bob.documents.ListDocuments(
                document_pb2.ListDocumentsRequest(parent=collection), timeout=30
            ),
            lambda: bob.documents.GetDocument(
                document_pb2.GetDocumentRequest(name=document), timeout=30
            ),
            lambda: bob.search.Search(
                search_pb2.SearchRequest(collection=collection, query="secret plans"), timeout=30
            ),
            lambda: bob.operations.GetOperation(
                operation_pb2.GetOperationRequest(name=operation), timeout=30
            ),
            lambda: bob.grants.ListGrants(
                grant_pb2.ListGrantsRequest(parent=collection), timeout=30
            ),
            lambda: bob.collections.DeleteCollection(
                collection_pb2.DeleteCollectionRequest(name=collection), timeout=30
            ),
        ]

    real_operation = people["operation"]
    ghost_operation = "operations/00000000-0000-4000-8000-000000000000"
    real = [_code(p) for p in probes("collections/cr-alice", real_document, real_operation)]
    ghost = [_code(p) for p in probes("collections/cr-ghost", ghost_document, ghost_operation)]
    for (real_code, real_message), (ghost_code, ghost_message) in zip(real, ghost, strict=True):
        assert real_code == ghost_code == grpc.StatusCode.NOT_FOUND
        renamed = real_message.replace("cr-alice", "cr-ghost").replace(
            real_operation, ghost_operation
        )
        assert renamed == ghost_message
    listed = bob.collections.ListCollections(collection_pb2.ListCollectionsRequest(), timeout=30)
    assert "collections/cr-alice" not in {c.name for c in listed.collections}
    operations = bob.operations.ListOperations(operation_pb2.ListOperationsRequest(), timeout=30)
    assert "collections/cr-alice" not in {op.collection for op in operations.operations}
    bob.channel.close()


def test_signing_key_rotation_and_weak_keys() -> None:
    old = SigningKeys.parse("old:" + "o" * 40)
    token = AccessTokens(old, 600).issue("someone", 1, "s")
    rotated = SigningKeys.parse("new:" + "n" * 40 + ",old:" + "o" * 40)
    assert rotated.current_kid == "new"
    assert AccessTokens(rotated, 600).verify(token).user_id == "someone"
    retired = SigningKeys.parse("new:" + "n" * 40)
    with pytest.raises(InvalidCredential):
        AccessTokens(retired, 600).verify(token)
    for weak in (
        "short",
        "k:" + "x" * 10,
        "bad kid!:" + "x" * 40,
        "a:" + "x" * 40 + ",a:" + "y" * 40,
    ):
        with pytest.raises(SigningKeyError):
            SigningKeys.parse(weak)


def test_the_gateway_refuses_production_without_a_signing_key() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("JWT_SECRET_KEY", "SEMANTIK_ENV", "SERVICE_TOKEN")
    }
    env.update(
        {"SEMANTIK_ENV": "production", "SERVICE_TOKEN": "t" * 40, "GATEWAY_ADDRESS": "127.0.0.1:0"}
    )
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "JWT_SECRET_KEY" in result.stderr
