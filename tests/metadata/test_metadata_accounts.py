"""Accounts, refresh tokens, grants and API keys of MetadataService, over gRPC
against a real PostgreSQL (the session's service and database)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import grpc
import pytest
from google.protobuf import timestamp_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import api_key_pb2, collection_pb2, grant_pb2, operation_pb2, user_pb2
from semantik_runner.stores import PostgresServer
from tests.metadata.conftest import field_violations, rpc_error

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION

OWNER = grant_pb2.COLLECTION_ROLE_OWNER
EDITOR = grant_pb2.COLLECTION_ROLE_EDITOR
VIEWER = grant_pb2.COLLECTION_ROLE_VIEWER
READ = api_key_pb2.API_KEY_VERB_READ
WRITE = api_key_pb2.API_KEY_VERB_WRITE


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[Any]:
    """A direct connection to the service's database, to look behind the API."""
    connection = await asyncpg.connect(postgres.url)
    try:
        yield connection
    finally:
        await connection.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def digest() -> bytes:
    """A fresh SHA-256, as of a new token or secret."""
    return hashlib.sha256(os.urandom(16)).digest()


def stamp(value: datetime) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value)
    return result


def later(**delta: float) -> timestamp_pb2.Timestamp:
    return stamp(datetime.now(UTC) + timedelta(**delta))


def user_request(
    user_id: str, role: user_pb2.Role = user_pb2.ROLE_EDITOR, only_if_no_users: bool = False
) -> metadata_pb2.CreateUserRequest:
    return metadata_pb2.CreateUserRequest(
        user=metadata_pb2.UserRecord(
            user=user_pb2.User(name=f"users/{user_id}", display_name=user_id.title(), role=role),
            password_hash=f"$argon2id$v=19$m=65536,t=3,p=4${user_id}",
            token_version=99,  # ignored: versions start at 1
        ),
        only_if_no_users=only_if_no_users,
    )


async def create_user(stub: Any, prefix: str = "user", **kwargs: Any) -> str:
    user_id = unique(prefix)
    await stub.CreateUser(user_request(user_id, **kwargs))
    return user_id


async def create_collection(stub: Any, prefix: str = "coll", owner: str = "") -> str:
    collection_id = unique(prefix)
    await stub.CreateCollection(
        metadata_pb2.CreateCollectionRequest(
            collection=collection_pb2.Collection(name=f"collections/{collection_id}"),
            owner_user_id=owner,
        )
    )
    return collection_id


def key_request(
    user_id: str, collections: list[str], **fields: Any
) -> metadata_pb2.CreateApiKeyRequest:
    key_id = fields.pop("key_id", uuid.uuid4().hex[:16])
    secret_hash = fields.pop("secret_hash", digest())
    verbs = fields.pop("verbs", [READ])
    return metadata_pb2.CreateApiKeyRequest(
        api_key=metadata_pb2.ApiKeyRecord(
            api_key=api_key_pb2.ApiKey(
                name=f"apiKeys/{key_id}",
                owner=f"users/{user_id}",
                collections=[f"collections/{c}" for c in collections],
                verbs=verbs,
                **fields,
            ),
            secret_hash=secret_hash,
        )
    )


async def create_token(stub: Any, user_id: str, family: str | None = None, **delta: float) -> bytes:
    token = digest()
    await stub.CreateRefreshToken(
        metadata_pb2.CreateRefreshTokenRequest(
            token_hash=token,
            family_id=family or str(uuid.uuid4()),
            user_id=user_id,
            expire_time=later(**(delta or {"days": 30})),
        )
    )
    return token


async def rotate(stub: Any, token: bytes, new: bytes | None = None) -> Any:
    return await stub.RotateRefreshToken(
        metadata_pb2.RotateRefreshTokenRequest(
            token_hash=token, new_token_hash=new or digest(), new_expire_time=later(days=30)
        )
    )


# Users ---------------------------------------------------------------------------


async def test_racing_bootstraps_create_exactly_one_admin(stub: Any, db: Any) -> None:
    # Bootstrap needs a database without users; earlier tests may have made some.
    await db.execute("DELETE FROM users")
    contenders = [f"admin-{i}" for i in range(6)]
    results = await asyncio.gather(
        *(
            stub.CreateUser(user_request(name, user_pb2.ROLE_ADMIN, only_if_no_users=True))
            for name in contenders
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1, results
    assert len(losers) == len(contenders) - 1
    assert {e.code() for e in losers} == {FAILED_PRECONDITION}
    assert await db.fetchval("SELECT count(*) FROM users") == 1
    winner = winners[0].user
    assert winner.user.role == user_pb2.ROLE_ADMIN
    assert winner.token_version == 1

    # Once anyone exists, bootstrap keeps failing; ordinary creation works.
    late = await rpc_error(stub.CreateUser(user_request("late", only_if_no_users=True)))
    assert late.code() == FAILED_PRECONDITION
    await stub.CreateUser(user_request(unique("plain")))


async def test_user_create_get_list_delete(stub: Any) -> None:
    user_id = unique("alice")
    created = (await stub.CreateUser(user_request(user_id, user_pb2.ROLE_VIEWER))).user
    assert created.user.name == f"users/{user_id}"
    assert created.user.display_name == user_id.title()
    assert created.user.role == user_pb2.ROLE_VIEWER
    assert created.user.create_time.seconds > 0
    assert created.password_hash.endswith(user_id)
    assert created.token_version == 1

    got = (await stub.GetUser(metadata_pb2.GetUserRequest(user_id=user_id))).user
    assert got == created

    again = await rpc_error(stub.CreateUser(user_request(user_id)))
    assert again.code() == ALREADY_EXISTS

    await stub.DeleteUser(metadata_pb2.DeleteUserRequest(user_id=user_id))
    gone = await rpc_error(stub.GetUser(metadata_pb2.GetUserRequest(user_id=user_id)))
    assert gone.code() == NOT_FOUND
    twice = await rpc_error(stub.DeleteUser(metadata_pb2.DeleteUserRequest(user_id=user_id)))
    assert twice.code() == NOT_FOUND


async def test_list_users_pages_by_id(stub: Any) -> None:
    ours = {await create_user(stub, "lister") for _ in range(7)}
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        response = await stub.ListUsers(
            metadata_pb2.ListUsersRequest(page_size=3, page_token=token)
        )
        assert len(response.users) <= 3
        seen.extend(u.name.removeprefix("users/") for u in response.users)
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    assert ours <= set(seen)
    assert pages >= 3
    bad = await rpc_error(stub.ListUsers(metadata_pb2.ListUsersRequest(page_token="nonsense")))
    assert bad.code() == INVALID
    assert "page_token" in field_violations(bad)


async def test_bad_account_requests_name_their_fields(stub: Any) -> None:
    cases: list[tuple[Any, Any, str]] = []
    bad_user = user_request("ok")
    bad_user.user.user.name = "users/Not_OK"
    cases.append((stub.CreateUser, bad_user, "user.user.name"))
    no_role = user_request("ok", role=user_pb2.ROLE_UNSPECIFIED)
    cases.append((stub.CreateUser, no_role, "user.user.role"))
    no_hash = user_request("ok")
    no_hash.user.password_hash = ""
    cases.append((stub.CreateUser, no_hash, "user.password_hash"))
    cases += [
        (stub.GetUser, metadata_pb2.GetUserRequest(user_id="users/x"), "user_id"),
        (stub.DeleteUser, metadata_pb2.DeleteUserRequest(user_id=""), "user_id"),
        (stub.ListUsers, metadata_pb2.ListUsersRequest(page_size=-1), "page_size"),
        (
            stub.SetPassword,
            metadata_pb2.SetPasswordRequest(user_id="bob", password_hash=""),
            "password_hash",
        ),
        (
            stub.CreateRefreshToken,
            metadata_pb2.CreateRefreshTokenRequest(
                token_hash=b"short",
                family_id=str(uuid.uuid4()),
                user_id="bob",
                expire_time=later(days=1),
            ),
            "token_hash",
        ),
        (
            stub.CreateRefreshToken,
            metadata_pb2.CreateRefreshTokenRequest(
                token_hash=digest(),
                family_id="not-a-uuid",
                user_id="bob",
                expire_time=later(days=1),
            ),
            "family_id",
        ),
        (
            stub.CreateRefreshToken,
            metadata_pb2.CreateRefreshTokenRequest(
                token_hash=digest(), family_id=str(uuid.uuid4()), user_id="bob"
            ),
            "expire_time",
        ),
        (
            stub.RotateRefreshToken,
            metadata_pb2.RotateRefreshTokenRequest(
                token_hash=digest(), new_token_hash=b"", new_expire_time=later(days=1)
            ),
            "new_token_hash",
        ),
        (
            stub.RotateRefreshToken,
            metadata_pb2.RotateRefreshTokenRequest(token_hash=digest(), new_token_hash=digest()),
            "new_expire_time",
        ),
        (stub.RevokeRefreshToken, metadata_pb2.RevokeRefreshTokenRequest(), "token_hash"),
        (
            stub.SetGrant,
            metadata_pb2.SetGrantRequest(collection_id="c", user_id="bob"),
            "role",
        ),
        (
            stub.SetGrant,
            metadata_pb2.SetGrantRequest(collection_id="collections/c", user_id="bob", role=OWNER),
            "collection_id",
        ),
        (stub.ListGrants, metadata_pb2.ListGrantsRequest(collection_id="C"), "collection_id"),
        (
            stub.DeleteGrant,
            metadata_pb2.DeleteGrantRequest(collection_id="c", user_id="B"),
            "user_id",
        ),
        (stub.ListApiKeys, metadata_pb2.ListApiKeysRequest(user_id=""), "user_id"),
        (
            stub.DeleteApiKey,
            metadata_pb2.DeleteApiKeyRequest(user_id="bob", api_key_id="short"),
            "api_key_id",
        ),
        (
            stub.ResolvePrincipal,
            metadata_pb2.ResolvePrincipalRequest(api_key_id="NOT-A-KEY"),
            "api_key_id",
        ),
        (stub.ResolvePrincipal, metadata_pb2.ResolvePrincipalRequest(), "principal"),
        (
            stub.ListCollections,
            metadata_pb2.ListCollectionsRequest(
                restrict_collections=True, collection_ids=["ok", "Bad"]
            ),
            "collection_ids[1]",
        ),
        (
            stub.ListOperations,
            metadata_pb2.ListOperationsRequest(restrict_collections=True, collection_ids=[""]),
            "collection_ids[0]",
        ),
        (
            stub.CreateCollection,
            metadata_pb2.CreateCollectionRequest(
                collection=collection_pb2.Collection(name="collections/fine"),
                owner_user_id="users/bob",
            ),
            "owner_user_id",
        ),
    ]
    # Every bad field of an API key is named at once.
    bad_key = key_request("bob", ["c"], key_id="SHORT", verbs=[READ, 0], secret_hash=b"x")
    bad_key.api_key.api_key.owner = "bob"
    bad_key.api_key.api_key.collections.append("c")
    bad_key.api_key.api_key.expire_time.seconds = 10**12  # past year 9999
    for method, request, field in cases:
        error = await rpc_error(method(request))
        assert error.code() == INVALID, (request, error)
        assert field in field_violations(error), (request, field_violations(error))
    error = await rpc_error(stub.CreateApiKey(bad_key))
    assert error.code() == INVALID
    assert set(field_violations(error)) == {
        "api_key.api_key.name",
        "api_key.api_key.owner",
        "api_key.api_key.verbs[1]",
        "api_key.api_key.collections[1]",
        "api_key.api_key.expire_time",
        "api_key.secret_hash",
    }
    empty = key_request("bob", [], verbs=[])
    error = await rpc_error(stub.CreateApiKey(empty))
    assert set(field_violations(error)) == {
        "api_key.api_key.collections",
        "api_key.api_key.verbs",
    }


async def test_set_password_bumps_version_and_revokes_refresh_tokens(stub: Any, db: Any) -> None:
    user_id = await create_user(stub, "pw")
    other = await create_user(stub, "pw-other")
    tokens = [await create_token(stub, user_id) for _ in range(3)]
    theirs = await create_token(stub, other)

    response = await stub.SetPassword(
        metadata_pb2.SetPasswordRequest(user_id=user_id, password_hash="$argon2id$new")
    )
    assert response.token_version == 2
    record = (await stub.GetUser(metadata_pb2.GetUserRequest(user_id=user_id))).user
    assert (record.password_hash, record.token_version) == ("$argon2id$new", 2)
    revoked = await db.fetchval(
        "SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoke_time IS NOT NULL",
        user_id,
    )
    assert revoked == 3
    for token in tokens:
        assert (await rotate(stub, token)).result == metadata_pb2.ROTATE_RESULT_INVALID
    # Another user's tokens are untouched.
    assert (await rotate(stub, theirs)).result == metadata_pb2.ROTATE_RESULT_ROTATED

    again = await stub.SetPassword(
        metadata_pb2.SetPasswordRequest(user_id=user_id, password_hash="$argon2id$newer")
    )
    assert again.token_version == 3
    missing = await rpc_error(
        stub.SetPassword(metadata_pb2.SetPasswordRequest(user_id="nobody", password_hash="h"))
    )
    assert missing.code() == NOT_FOUND


# Refresh tokens ----------------------------------------------------------------------


async def test_refresh_token_rotation_and_reuse(stub: Any) -> None:
    user_id = await create_user(stub, "rot")
    first = await create_token(stub, user_id)
    second = digest()
    rotated = await rotate(stub, first, second)
    assert rotated.result == metadata_pb2.ROTATE_RESULT_ROTATED
    assert rotated.user_id == user_id
    third = digest()
    assert (await rotate(stub, second, third)).result == metadata_pb2.ROTATE_RESULT_ROTATED

    # The spent first token again: theft. The whole family goes, the live one too.
    reused = await rotate(stub, first)
    assert reused.result == metadata_pb2.ROTATE_RESULT_REUSED
    assert reused.user_id == user_id
    family_gone = await rotate(stub, third)
    assert family_gone.result == metadata_pb2.ROTATE_RESULT_INVALID
    assert family_gone.user_id == user_id

    unknown = await rotate(stub, digest())
    assert unknown.result == metadata_pb2.ROTATE_RESULT_INVALID
    assert unknown.user_id == ""


async def test_expired_refresh_token_is_not_rotated(stub: Any, db: Any) -> None:
    user_id = await create_user(stub, "exp")
    token = await create_token(stub, user_id, seconds=-1)
    expired = await rotate(stub, token)
    assert expired.result == metadata_pb2.ROTATE_RESULT_EXPIRED
    assert expired.user_id == user_id
    # Nothing was stored for it, and it was not spent.
    rows = await db.fetch("SELECT used_time FROM refresh_tokens WHERE user_id = $1", user_id)
    assert [r["used_time"] for r in rows] == [None]


async def test_concurrent_rotations_of_one_token_let_one_through(stub: Any) -> None:
    user_id = await create_user(stub, "race")
    token = await create_token(stub, user_id)
    successors = [digest() for _ in range(4)]
    results = await asyncio.gather(*(rotate(stub, token, new) for new in successors))
    outcomes = sorted(r.result for r in results)
    assert outcomes == [
        metadata_pb2.ROTATE_RESULT_ROTATED,
        *[metadata_pb2.ROTATE_RESULT_REUSED] * 3,
    ]
    # The reuse revoked the family, the winner's successor included.
    for new in successors:
        assert (await rotate(stub, new)).result == metadata_pb2.ROTATE_RESULT_INVALID


async def test_revoke_refresh_token_revokes_its_family(stub: Any) -> None:
    user_id = await create_user(stub, "rev")
    family = str(uuid.uuid4())
    first = await create_token(stub, user_id, family)
    second = digest()
    await rotate(stub, first, second)
    other_family = await create_token(stub, user_id)

    revoked = await stub.RevokeRefreshToken(
        metadata_pb2.RevokeRefreshTokenRequest(token_hash=first)
    )
    assert (revoked.found, revoked.user_id) == (True, user_id)
    assert (await rotate(stub, second)).result == metadata_pb2.ROTATE_RESULT_INVALID
    assert (await rotate(stub, other_family)).result == metadata_pb2.ROTATE_RESULT_ROTATED

    unknown = await stub.RevokeRefreshToken(
        metadata_pb2.RevokeRefreshTokenRequest(token_hash=digest())
    )
    assert (unknown.found, unknown.user_id) == (False, "")


async def test_create_refresh_token_errors(stub: Any) -> None:
    user_id = await create_user(stub, "tok")
    token = await create_token(stub, user_id)
    duplicate = await rpc_error(
        stub.CreateRefreshToken(
            metadata_pb2.CreateRefreshTokenRequest(
                token_hash=token,
                family_id=str(uuid.uuid4()),
                user_id=user_id,
                expire_time=later(days=1),
            )
        )
    )
    assert duplicate.code() == ALREADY_EXISTS
    nobody = await rpc_error(create_token(stub, unique("nobody")))
    assert nobody.code() == NOT_FOUND
    # A successor whose hash is taken is refused, and the token stays unspent.
    clash = await rpc_error(rotate(stub, token, await create_token(stub, user_id)))
    assert clash.code() == ALREADY_EXISTS
    assert (await rotate(stub, token)).result == metadata_pb2.ROTATE_RESULT_ROTATED


# Grants --------------------------------------------------------------------------------


async def test_grants_set_list_delete(stub: Any) -> None:
    collection_id = await create_collection(stub, "granted")
    users = sorted([await create_user(stub, "grantee") for _ in range(5)])
    for user_id in reversed(users):
        grant = (
            await stub.SetGrant(
                metadata_pb2.SetGrantRequest(
                    collection_id=collection_id, user_id=user_id, role=VIEWER
                )
            )
        ).grant
        assert grant.name == f"collections/{collection_id}/grants/{user_id}"
        assert grant.user == f"users/{user_id}"
        assert grant.role == VIEWER
    # An upsert: the role is replaced, the grant not duplicated.
    before = grant.update_time.ToDatetime()
    upgraded = (
        await stub.SetGrant(
            metadata_pb2.SetGrantRequest(collection_id=collection_id, user_id=users[0], role=EDITOR)
        )
    ).grant
    assert upgraded.role == EDITOR
    assert upgraded.update_time.ToDatetime() >= before

    listed: list[Any] = []
    token = ""
    while True:
        response = await stub.ListGrants(
            metadata_pb2.ListGrantsRequest(
                collection_id=collection_id, page_size=2, page_token=token
            )
        )
        listed.extend(response.grants)
        token = response.next_page_token
        if not token:
            break
    assert [g.user for g in listed] == [f"users/{u}" for u in users]
    assert [g.role for g in listed] == [EDITOR] + [VIEWER] * 4

    # A token of one collection's grants does not continue another's.
    other = await create_collection(stub, "granted-other")
    first = await stub.ListGrants(
        metadata_pb2.ListGrantsRequest(collection_id=collection_id, page_size=1)
    )
    foreign = await rpc_error(
        stub.ListGrants(
            metadata_pb2.ListGrantsRequest(collection_id=other, page_token=first.next_page_token)
        )
    )
    assert foreign.code() == INVALID
    assert (await stub.ListGrants(metadata_pb2.ListGrantsRequest(collection_id=other))).grants == []

    await stub.DeleteGrant(
        metadata_pb2.DeleteGrantRequest(collection_id=collection_id, user_id=users[1])
    )
    again = await rpc_error(
        stub.DeleteGrant(
            metadata_pb2.DeleteGrantRequest(collection_id=collection_id, user_id=users[1])
        )
    )
    assert again.code() == NOT_FOUND
    remaining = await stub.ListGrants(metadata_pb2.ListGrantsRequest(collection_id=collection_id))
    assert users[1] not in {g.user.removeprefix("users/") for g in remaining.grants}
    assert len(remaining.grants) == 4


async def test_grant_not_found_names_what_is_missing(stub: Any) -> None:
    collection_id = await create_collection(stub, "nf")
    user_id = await create_user(stub, "nf")
    no_collection = await rpc_error(
        stub.SetGrant(
            metadata_pb2.SetGrantRequest(collection_id="absent", user_id=user_id, role=VIEWER)
        )
    )
    assert no_collection.code() == NOT_FOUND
    assert "collections/absent" in (no_collection.details() or "")
    no_user = await rpc_error(
        stub.SetGrant(
            metadata_pb2.SetGrantRequest(collection_id=collection_id, user_id="ghost", role=VIEWER)
        )
    )
    assert no_user.code() == NOT_FOUND
    assert "users/ghost" in (no_user.details() or "")
    neither = await rpc_error(
        stub.SetGrant(
            metadata_pb2.SetGrantRequest(collection_id="absent", user_id="ghost", role=OWNER)
        )
    )
    assert "collections/absent" in (neither.details() or "")
    listing = await rpc_error(
        stub.ListGrants(metadata_pb2.ListGrantsRequest(collection_id="absent"))
    )
    assert listing.code() == NOT_FOUND


async def test_create_collection_with_owner(stub: Any, db: Any) -> None:
    owner = await create_user(stub, "owner")
    collection_id = await create_collection(stub, "owned", owner=owner)
    grants = await stub.ListGrants(metadata_pb2.ListGrantsRequest(collection_id=collection_id))
    assert [(g.user, g.role) for g in grants.grants] == [(f"users/{owner}", OWNER)]

    # An absent owner: nothing is created (one transaction).
    orphan = unique("orphan")
    missing = await rpc_error(
        stub.CreateCollection(
            metadata_pb2.CreateCollectionRequest(
                collection=collection_pb2.Collection(name=f"collections/{orphan}"),
                owner_user_id="ghost",
            )
        )
    )
    assert missing.code() == NOT_FOUND
    assert "users/ghost" in (missing.details() or "")
    assert await db.fetchval("SELECT count(*) FROM collections WHERE id = $1", orphan) == 0

    # A taken id with an owner: ALREADY_EXISTS, and the owner gets no grant.
    other = await create_user(stub, "owner2")
    taken = await rpc_error(
        stub.CreateCollection(
            metadata_pb2.CreateCollectionRequest(
                collection=collection_pb2.Collection(name=f"collections/{collection_id}"),
                owner_user_id=other,
            )
        )
    )
    assert taken.code() == ALREADY_EXISTS
    assert (
        await db.fetchval("SELECT count(*) FROM collection_grants WHERE user_id = $1", other) == 0
    )


async def test_grants_go_with_their_collection_and_user(stub: Any, db: Any) -> None:
    keeper = await create_user(stub, "keeper")
    leaver = await create_user(stub, "leaver")
    kept = await create_collection(stub, "kept", owner=keeper)
    doomed = await create_collection(stub, "doomed", owner=keeper)
    for collection_id in (kept, doomed):
        await stub.SetGrant(
            metadata_pb2.SetGrantRequest(collection_id=collection_id, user_id=leaver, role=EDITOR)
        )

    await stub.DeleteCollection(metadata_pb2.DeleteCollectionRequest(name=f"collections/{doomed}"))
    principal = await stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(user_id=keeper))
    assert dict(principal.grants) == {kept: OWNER}

    await stub.DeleteUser(metadata_pb2.DeleteUserRequest(user_id=leaver))
    grants = await stub.ListGrants(metadata_pb2.ListGrantsRequest(collection_id=kept))
    assert [g.user for g in grants.grants] == [f"users/{keeper}"]
    assert (
        await db.fetchval("SELECT count(*) FROM collection_grants WHERE user_id = $1", leaver) == 0
    )


async def test_delete_user_takes_grants_keys_and_tokens(stub: Any, db: Any) -> None:
    user_id = await create_user(stub, "gone")
    collection_id = await create_collection(stub, "gone", owner=user_id)
    await create_token(stub, user_id)
    await stub.CreateApiKey(key_request(user_id, [collection_id]))
    await stub.DeleteUser(metadata_pb2.DeleteUserRequest(user_id=user_id))
    for table in ("collection_grants", "api_keys", "refresh_tokens"):
        count = await db.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", user_id)
        assert count == 0, table
    # The collection itself stays.
    assert await db.fetchval("SELECT count(*) FROM collections WHERE id = $1", collection_id) == 1


# Restricted listings ----------------------------------------------------------------------


async def test_restricted_collection_listing_pages_in_sql(stub: Any) -> None:
    prefix = unique("rl")
    ids = [f"{prefix}-{i}" for i in range(9)]
    for collection_id in ids:
        await stub.CreateCollection(
            metadata_pb2.CreateCollectionRequest(
                collection=collection_pb2.Collection(name=f"collections/{collection_id}")
            )
        )
    allowed = [*ids[1::2], "never-created", ids[1]]  # 4 real ones, an absent id, a repeat
    seen: list[str] = []
    sizes: list[int] = []
    token = ""
    while True:
        response = await stub.ListCollections(
            metadata_pb2.ListCollectionsRequest(
                page_size=3, page_token=token, restrict_collections=True, collection_ids=allowed
            )
        )
        seen.extend(c.name.removeprefix("collections/") for c in response.collections)
        sizes.append(len(response.collections))
        token = response.next_page_token
        if not token:
            break
    assert seen == sorted(ids[1::2])
    # Full pages: the restriction is in the query, not a filter on a page.
    assert sizes == [3, 1]

    empty = await stub.ListCollections(
        metadata_pb2.ListCollectionsRequest(restrict_collections=True)
    )
    assert (list(empty.collections), empty.next_page_token) == ([], "")
    # Without the flag the ids are ignored.
    everything = await stub.ListCollections(
        metadata_pb2.ListCollectionsRequest(page_size=1000, collection_ids=[ids[0]])
    )
    assert set(ids) <= {c.name.removeprefix("collections/") for c in everything.collections}


async def test_restricted_operation_listing_pages_in_sql(stub: Any) -> None:
    collections = [await create_collection(stub, "rops") for _ in range(3)]
    made: dict[str, list[str]] = {c: [] for c in collections}
    for i in range(4):
        for collection_id in collections:
            response = await stub.CreateOperation(
                metadata_pb2.CreateOperationRequest(
                    operation=operation_pb2.Operation(
                        kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                        collection=f"collections/{collection_id}",
                        source_path=f"/src/{i}",
                    )
                )
            )
            made[collection_id].append(response.operation.name)
    allowed = collections[:2]
    listed: list[Any] = []
    sizes: list[int] = []
    token = ""
    while True:
        response = await stub.ListOperations(
            metadata_pb2.ListOperationsRequest(
                page_size=3, page_token=token, restrict_collections=True, collection_ids=allowed
            )
        )
        listed.extend(response.operations)
        sizes.append(len(response.operations))
        token = response.next_page_token
        if not token:
            break
    assert {op.name for op in listed} == set(made[allowed[0]] + made[allowed[1]])
    assert len(listed) == 8
    assert sizes == [3, 3, 2]
    times = [op.create_time.ToDatetime() for op in listed]
    assert times == sorted(times, reverse=True)

    empty = await stub.ListOperations(
        metadata_pb2.ListOperationsRequest(restrict_collections=True, collection_ids=[])
    )
    assert list(empty.operations) == []


# API keys --------------------------------------------------------------------------------


async def test_api_key_create_list_delete(stub: Any) -> None:
    user_id = await create_user(stub, "keys")
    other = await create_user(stub, "keys-other")
    collection_id = await create_collection(stub, "keyed", owner=user_id)
    secret = digest()
    expire = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    request = key_request(
        user_id,
        [collection_id, "not-yet-made", collection_id],
        key_id="abcdef0123456789",
        display_name="ci",
        verbs=[READ, WRITE, READ],
        secret_hash=secret,
        expire_time=stamp(expire),
    )
    stored = (await stub.CreateApiKey(request)).api_key
    assert stored.secret_hash == secret
    key = stored.api_key
    assert key.name == "apiKeys/abcdef0123456789"
    assert key.owner == f"users/{user_id}"
    assert key.display_name == "ci"
    # Stored as ids, given back as names; repeats dropped, order kept.
    assert list(key.collections) == [f"collections/{collection_id}", "collections/not-yet-made"]
    assert list(key.verbs) == [READ, WRITE]
    assert key.expire_time.ToDatetime(tzinfo=UTC) == expire
    assert key.create_time.seconds > 0

    taken = await rpc_error(stub.CreateApiKey(request))
    assert taken.code() == ALREADY_EXISTS
    nobody = await rpc_error(stub.CreateApiKey(key_request("ghost", [collection_id])))
    assert nobody.code() == NOT_FOUND
    assert "users/ghost" in (nobody.details() or "")

    more = [key_request(user_id, [collection_id]) for _ in range(4)]
    for extra in more:
        await stub.CreateApiKey(extra)
    await stub.CreateApiKey(key_request(other, [collection_id]))
    ids = sorted(
        ["abcdef0123456789"] + [r.api_key.api_key.name.removeprefix("apiKeys/") for r in more]
    )

    async def listed(user: str) -> list[Any]:
        keys: list[Any] = []
        token = ""
        while True:
            response = await stub.ListApiKeys(
                metadata_pb2.ListApiKeysRequest(user_id=user, page_size=2, page_token=token)
            )
            keys.extend(response.api_keys)
            token = response.next_page_token
            if not token:
                return keys

    keys = await listed(user_id)
    assert [k.name.removeprefix("apiKeys/") for k in keys] == ids
    assert all(k.owner == f"users/{user_id}" for k in keys)

    # Another user cannot revoke it; revoking hides it from the listing.
    theirs = await rpc_error(
        stub.DeleteApiKey(metadata_pb2.DeleteApiKeyRequest(user_id=other, api_key_id=ids[0]))
    )
    assert theirs.code() == NOT_FOUND
    await stub.DeleteApiKey(metadata_pb2.DeleteApiKeyRequest(user_id=user_id, api_key_id=ids[0]))
    twice = await rpc_error(
        stub.DeleteApiKey(metadata_pb2.DeleteApiKeyRequest(user_id=user_id, api_key_id=ids[0]))
    )
    assert twice.code() == NOT_FOUND
    absent = await rpc_error(
        stub.DeleteApiKey(metadata_pb2.DeleteApiKeyRequest(user_id=user_id, api_key_id="00000000"))
    )
    assert absent.code() == NOT_FOUND
    assert [k.name.removeprefix("apiKeys/") for k in await listed(user_id)] == ids[1:]
    # A revoked key's id stays taken.
    reuse = await rpc_error(stub.CreateApiKey(request))
    assert reuse.code() == ALREADY_EXISTS

    no_user = await rpc_error(stub.ListApiKeys(metadata_pb2.ListApiKeysRequest(user_id="ghost")))
    assert no_user.code() == NOT_FOUND
    token = (
        await stub.ListApiKeys(metadata_pb2.ListApiKeysRequest(user_id=user_id, page_size=1))
    ).next_page_token
    foreign = await rpc_error(
        stub.ListApiKeys(metadata_pb2.ListApiKeysRequest(user_id=other, page_token=token))
    )
    assert foreign.code() == INVALID


# ResolvePrincipal -------------------------------------------------------------------------


async def test_resolve_principal_by_user(stub: Any) -> None:
    user_id = await create_user(stub, "who", role=user_pb2.ROLE_EDITOR)
    owned = await create_collection(stub, "who-owned", owner=user_id)
    shared = await create_collection(stub, "who-shared")
    await stub.SetGrant(
        metadata_pb2.SetGrantRequest(collection_id=shared, user_id=user_id, role=VIEWER)
    )
    response = await stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(user_id=user_id))
    assert response.user.user.name == f"users/{user_id}"
    assert response.user.user.role == user_pb2.ROLE_EDITOR
    assert response.user.token_version == 1
    assert response.user.password_hash
    assert dict(response.grants) == {owned: OWNER, shared: VIEWER}
    assert not response.HasField("api_key")

    lonely = await create_user(stub, "lonely")
    bare = await stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(user_id=lonely))
    assert dict(bare.grants) == {}

    missing = await rpc_error(
        stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(user_id="ghost"))
    )
    assert missing.code() == NOT_FOUND


async def test_resolve_principal_by_api_key(stub: Any, db: Any) -> None:
    user_id = await create_user(stub, "bot")
    collection_id = await create_collection(stub, "bot", owner=user_id)
    secret = digest()
    # Already expired: the gateway checks expiry, so it still resolves.
    expired = datetime(2020, 1, 1, tzinfo=UTC)
    stored = (
        await stub.CreateApiKey(
            key_request(user_id, [collection_id], secret_hash=secret, expire_time=stamp(expired))
        )
    ).api_key
    key_id = stored.api_key.name.removeprefix("apiKeys/")
    assert await db.fetchval("SELECT last_used_time FROM api_keys WHERE id = $1", key_id) is None

    response = await stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(api_key_id=key_id))
    assert response.user.user.name == f"users/{user_id}"
    assert dict(response.grants) == {collection_id: OWNER}
    assert response.api_key == stored
    assert response.api_key.secret_hash == secret
    assert response.api_key.api_key.expire_time.ToDatetime(tzinfo=UTC) == expired

    # The use is recorded, at most once a minute.
    first_use = await db.fetchval("SELECT last_used_time FROM api_keys WHERE id = $1", key_id)
    assert first_use is not None
    await stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(api_key_id=key_id))
    assert (
        await db.fetchval("SELECT last_used_time FROM api_keys WHERE id = $1", key_id) == first_use
    )
    await db.execute(
        "UPDATE api_keys SET last_used_time = now() - interval '2 minutes' WHERE id = $1", key_id
    )
    await stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(api_key_id=key_id))
    assert (
        await db.fetchval("SELECT last_used_time FROM api_keys WHERE id = $1", key_id) > first_use
    )

    # Many at once neither wait on each other nor fail.
    await asyncio.gather(
        *(
            stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(api_key_id=key_id))
            for _ in range(20)
        )
    )

    await stub.DeleteApiKey(metadata_pb2.DeleteApiKeyRequest(user_id=user_id, api_key_id=key_id))
    revoked = await rpc_error(
        stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(api_key_id=key_id))
    )
    assert revoked.code() == NOT_FOUND
    unknown = await rpc_error(
        stub.ResolvePrincipal(metadata_pb2.ResolvePrincipalRequest(api_key_id="zzzzzzzz"))
    )
    assert unknown.code() == NOT_FOUND


async def test_resolve_principal_reports_a_revoked_sign_in(stub: Any) -> None:
    user_id = await create_user(stub, "sess")
    family = str(uuid.uuid4())
    first = await create_token(stub, user_id, family)
    rotated = await rotate(stub, first)
    assert rotated.family_id == family

    def resolve(session: str) -> Any:
        return stub.ResolvePrincipal(
            metadata_pb2.ResolvePrincipalRequest(user_id=user_id, session_id=session)
        )

    assert not (await resolve(family)).session_revoked
    assert not (await resolve("")).session_revoked
    await stub.RevokeRefreshToken(metadata_pb2.RevokeRefreshTokenRequest(token_hash=first))
    assert (await resolve(family)).session_revoked
    assert not (await resolve(str(uuid.uuid4()))).session_revoked
    bad = await rpc_error(resolve("not-a-uuid"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
