"""Sources (folders imports may read), their grants, the source of an
operation, and migration 0006 registering the folders imported before it;
over gRPC against a real PostgreSQL (the session's service and database)."""

from __future__ import annotations

import hashlib
import os
import uuid
from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
import grpc
import pytest

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import operation_pb2, source_pb2
from semantik_runner.stores import PostgresServer
from services.metadata import schema
from tests.metadata.conftest import field_violations, rpc_error
from tests.metadata.test_metadata_accounts import create_collection, create_user, unique
from tests.metadata.test_metadata_schema import scratch_database

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS

OWNER = source_pb2.SOURCE_ROLE_OWNER
READER = source_pb2.SOURCE_ROLE_READER
NONE = source_pb2.SOURCE_ROLE_UNSPECIFIED
UNKNOWN_ROLE = cast(source_pb2.SourceRole, 3)


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[Any]:
    """A direct connection to the service's database, to look behind the API."""
    connection = await asyncpg.connect(postgres.url)
    try:
        yield connection
    finally:
        await connection.close()


def folder() -> str:
    """A folder no other test registers."""
    return f"/srv/{uuid.uuid4().hex}"


async def create_source(
    stub: Any, path: str, owner: str = "", prefix: str = "src", **fields: Any
) -> Any:
    source_id = unique(prefix)
    response = await stub.CreateSource(
        metadata_pb2.CreateSourceRequest(
            source=source_pb2.Source(
                name=f"sources/{source_id}",
                path=path,
                owner=f"users/{owner}" if owner else "",
                **fields,
            )
        )
    )
    return response.source


async def get_source(stub: Any, name: str, user_id: str = "") -> Any:
    response = await stub.GetSource(metadata_pb2.GetSourceRequest(name=name, user_id=user_id))
    return response.source


async def find(stub: Any, path: str, user_id: str = "") -> Any:
    response = await stub.FindSourceForPath(
        metadata_pb2.FindSourceForPathRequest(path=path, user_id=user_id)
    )
    return response.source


async def grant(stub: Any, source: Any, user_id: str, role: source_pb2.SourceRole) -> Any:
    response = await stub.SetSourceGrant(
        metadata_pb2.SetSourceGrantRequest(
            source_id=source.name.removeprefix("sources/"), user_id=user_id, role=role
        )
    )
    return response.grant


async def list_all_sources(stub: Any, page_size: int, restrict_user_id: str = "") -> list[Any]:
    listed: list[Any] = []
    token = ""
    while True:
        response = await stub.ListSources(
            metadata_pb2.ListSourcesRequest(
                page_size=page_size, page_token=token, restrict_user_id=restrict_user_id
            )
        )
        assert len(response.sources) <= page_size
        listed.extend(response.sources)
        token = response.next_page_token
        if not token:
            return listed


# Sources -------------------------------------------------------------------------------


async def test_source_create_get_delete(stub: Any, db: Any) -> None:
    owner = await create_user(stub, "src-owner")
    path = folder()
    created = await create_source(stub, path, owner=owner, display_name="Team notes")
    source_id = created.name.removeprefix("sources/")
    assert created.path == path
    assert created.display_name == "Team notes"
    assert created.owner == f"users/{owner}"
    assert created.HasField("create_time")

    got = await get_source(stub, created.name, owner)
    assert got.caller_role == OWNER
    got.caller_role = NONE
    assert got == created
    # No user: no role.
    assert (await get_source(stub, created.name)).caller_role == NONE

    # Without an owner (an admin's source).
    unowned = await create_source(stub, folder())
    assert unowned.owner == ""

    reader = await create_user(stub, "src-reader")
    await grant(stub, created, reader, READER)
    assert (
        await db.fetchval("SELECT count(*) FROM source_grants WHERE source_id = $1", source_id) == 1
    )
    await stub.DeleteSource(metadata_pb2.DeleteSourceRequest(name=created.name))
    gone = await rpc_error(get_source(stub, created.name))
    assert gone.code() == NOT_FOUND
    assert created.name in (gone.details() or "")
    again = await rpc_error(stub.DeleteSource(metadata_pb2.DeleteSourceRequest(name=created.name)))
    assert again.code() == NOT_FOUND
    # Its grants went with it.
    assert (
        await db.fetchval("SELECT count(*) FROM source_grants WHERE source_id = $1", source_id) == 0
    )


async def test_create_source_says_what_is_taken_or_missing(stub: Any, db: Any) -> None:
    path = folder()
    created = await create_source(stub, path)

    same_id = await rpc_error(
        stub.CreateSource(
            metadata_pb2.CreateSourceRequest(
                source=source_pb2.Source(name=created.name, path=folder())
            )
        )
    )
    assert same_id.code() == ALREADY_EXISTS
    assert created.name in (same_id.details() or "")

    same_path = await rpc_error(create_source(stub, path))
    assert same_path.code() == ALREADY_EXISTS
    assert f"path {path}" in (same_path.details() or "")

    # An absent owner: NOT_FOUND naming them, and nothing is stored.
    orphan_path = folder()
    missing = await rpc_error(create_source(stub, orphan_path, owner="ghost"))
    assert missing.code() == NOT_FOUND
    assert "users/ghost" in (missing.details() or "")
    assert await db.fetchval("SELECT count(*) FROM sources WHERE path = $1", orphan_path) == 0


async def test_a_path_too_long_to_index_is_invalid_not_internal(stub: Any) -> None:
    # 4096 incompressible characters: allowed by the rule, too big for a
    # b-tree entry; PostgreSQL's refusal is the caller's error.
    text = urlsafe_b64encode(os.urandom(3072)).decode()
    # Folders of 199 characters: `/` at every 200th index, none at the end.
    path = ("/" + "/".join(text[i : i + 199] for i in range(0, len(text), 199)))[:4096]
    assert len(path) == 4096
    error = await rpc_error(create_source(stub, path))
    assert error.code() == INVALID
    assert "source.path" in field_violations(error)


def create_request(**fields: Any) -> metadata_pb2.CreateSourceRequest:
    source = {"name": "sources/fine", "path": "/srv/fine", **fields}
    return metadata_pb2.CreateSourceRequest(source=source_pb2.Source(**source))


BAD_REQUESTS = [
    ("CreateSource", create_request(name=""), "source.name"),
    ("CreateSource", create_request(name="sources/Bad"), "source.name"),
    ("CreateSource", create_request(name="collections/fine"), "source.name"),
    ("CreateSource", create_request(name="sources/" + "a" * 64), "source.name"),
    ("CreateSource", create_request(path=""), "source.path"),
    ("CreateSource", create_request(path="srv/relative"), "source.path"),
    ("CreateSource", create_request(path="/"), "source.path"),
    ("CreateSource", create_request(path="/srv/trailing/"), "source.path"),
    ("CreateSource", create_request(path="/srv//double"), "source.path"),
    ("CreateSource", create_request(path="/srv/../etc"), "source.path"),
    ("CreateSource", create_request(path="/srv/./here"), "source.path"),
    ("CreateSource", create_request(path="/srv/n\x00ul"), "source.path"),
    ("CreateSource", create_request(path="/" + "a" * 4096), "source.path"),
    ("CreateSource", create_request(owner="alice"), "source.owner"),
    ("CreateSource", create_request(owner="users/Alice"), "source.owner"),
    ("CreateSource", create_request(display_name="n\x00ul"), "source.display_name"),
    ("GetSource", metadata_pb2.GetSourceRequest(name="sources/"), "name"),
    ("GetSource", metadata_pb2.GetSourceRequest(name="sources/ok", user_id="Bad"), "user_id"),
    ("FindSourceForPath", metadata_pb2.FindSourceForPathRequest(path=""), "path"),
    ("FindSourceForPath", metadata_pb2.FindSourceForPathRequest(path="relative"), "path"),
    ("FindSourceForPath", metadata_pb2.FindSourceForPathRequest(path="/srv/"), "path"),
    ("FindSourceForPath", metadata_pb2.FindSourceForPathRequest(path="/srv/a/../b"), "path"),
    (
        "FindSourceForPath",
        metadata_pb2.FindSourceForPathRequest(path="/srv", user_id="users/a"),
        "user_id",
    ),
    ("ListSources", metadata_pb2.ListSourcesRequest(page_size=-1), "page_size"),
    ("ListSources", metadata_pb2.ListSourcesRequest(page_token="nonsense"), "page_token"),
    ("ListSources", metadata_pb2.ListSourcesRequest(restrict_user_id="A"), "restrict_user_id"),
    ("DeleteSource", metadata_pb2.DeleteSourceRequest(name="sources/Bad"), "name"),
    (
        "SetSourceGrant",
        metadata_pb2.SetSourceGrantRequest(source_id="Bad", user_id="ok", role=READER),
        "source_id",
    ),
    (
        "SetSourceGrant",
        metadata_pb2.SetSourceGrantRequest(source_id="ok", user_id="", role=READER),
        "user_id",
    ),
    ("SetSourceGrant", metadata_pb2.SetSourceGrantRequest(source_id="ok", user_id="ok"), "role"),
    (
        "SetSourceGrant",
        metadata_pb2.SetSourceGrantRequest(source_id="ok", user_id="ok", role=UNKNOWN_ROLE),
        "role",
    ),
    ("ListSourceGrants", metadata_pb2.ListSourceGrantsRequest(source_id=""), "source_id"),
    (
        "ListSourceGrants",
        metadata_pb2.ListSourceGrantsRequest(source_id="ok", page_size=-1),
        "page_size",
    ),
    (
        "ListSourceGrants",
        metadata_pb2.ListSourceGrantsRequest(source_id="ok", page_token="nonsense"),
        "page_token",
    ),
    (
        "DeleteSourceGrant",
        metadata_pb2.DeleteSourceGrantRequest(source_id="ok", user_id="Bad"),
        "user_id",
    ),
    (
        "DeleteSourceGrant",
        metadata_pb2.DeleteSourceGrantRequest(source_id="9", user_id="ok"),
        "source_id",
    ),
]


@pytest.mark.parametrize(("method", "request_", "field"), BAD_REQUESTS)
async def test_bad_source_requests_name_their_field(
    stub: Any, method: str, request_: Any, field: str
) -> None:
    error = await rpc_error(getattr(stub, method)(request_))
    assert error.code() == INVALID
    assert field in field_violations(error)


async def test_every_bad_field_is_named_at_once(stub: Any) -> None:
    error = await rpc_error(
        stub.CreateSource(create_request(name="sources/Bad", path="rel", owner="nobody"))
    )
    assert set(field_violations(error)) == {"source.name", "source.path", "source.owner"}


async def test_caller_role_for_owner_grantee_and_stranger(stub: Any) -> None:
    owner, reader, co_owner, stranger = [await create_user(stub, "role") for _ in range(4)]
    source = await create_source(stub, folder(), owner=owner)
    await grant(stub, source, reader, READER)
    await grant(stub, source, co_owner, OWNER)
    # The owner's own READER grant does not lower their role.
    await grant(stub, source, owner, READER)
    roles = {
        user_id: (await get_source(stub, source.name, user_id)).caller_role
        for user_id in (owner, reader, co_owner, stranger, "")
    }
    assert roles == {owner: OWNER, reader: READER, co_owner: OWNER, stranger: NONE, "": NONE}
    for user_id, role in roles.items():
        assert (await find(stub, f"{source.path}/sub", user_id)).caller_role == role


async def test_find_source_for_path_takes_the_deepest_and_matches_folders_only(
    stub: Any,
) -> None:
    root = folder()
    data = await create_source(stub, f"{root}/data")
    deeper = await create_source(stub, f"{root}/data/a")
    percent = await create_source(stub, f"{root}/pct/a%b")
    underscore = await create_source(stub, f"{root}/und/a_b")

    assert (await find(stub, f"{root}/data/a/x/y")).name == deeper.name
    assert (await find(stub, f"{root}/data/a")).name == deeper.name
    assert (await find(stub, f"{root}/data")).name == data.name
    # `/data/a` holds `/data/a/...`, not `/data/ab`.
    assert (await find(stub, f"{root}/data/ab/x")).name == data.name
    assert (await find(stub, f"{root}/data/ab")).name == data.name
    # Wildcards of LIKE are plain characters here.
    assert (await find(stub, f"{root}/pct/a%b/c")).name == percent.name
    assert (await find(stub, f"{root}/und/a_b/c")).name == underscore.name
    for path in (
        f"{root}/pct/aXb/c",
        f"{root}/pct/a",
        f"{root}/und/aXb",
        f"{root}/dat",
        root,
        "/",
    ):
        error = await rpc_error(find(stub, path))
        assert error.code() == NOT_FOUND, path


async def test_list_sources_all_and_restricted_pages(stub: Any) -> None:
    user = await create_user(stub, "lister")
    other = await create_user(stub, "other")
    prefix = unique("ls")
    owned = [
        await create_source(stub, folder(), owner=user, prefix=f"{prefix}-o") for _ in range(3)
    ]
    granted = [
        await create_source(stub, folder(), owner=other, prefix=f"{prefix}-g") for _ in range(2)
    ]
    for source in granted:
        await grant(stub, source, user, READER)
    foreign = await create_source(stub, folder(), owner=other, prefix=f"{prefix}-f")

    mine = await list_all_sources(stub, 2, restrict_user_id=user)
    expected = sorted(owned + granted, key=lambda s: s.name)
    assert [s.name for s in mine] == [s.name for s in expected]
    roles = {s.name: s.caller_role for s in mine}
    assert roles == {s.name: OWNER for s in owned} | {s.name: READER for s in granted}

    everything = await list_all_sources(stub, 3)
    names = [s.name for s in everything]
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    assert {s.name for s in [*owned, *granted, foreign]} <= set(names)
    assert {s.caller_role for s in everything} == {NONE}

    # A user with nothing gets nothing; a token of one listing does not
    # continue another.
    nobody = await create_user(stub, "nobody")
    empty = await stub.ListSources(metadata_pb2.ListSourcesRequest(restrict_user_id=nobody))
    assert (list(empty.sources), empty.next_page_token) == ([], "")
    first = await stub.ListSources(
        metadata_pb2.ListSourcesRequest(page_size=1, restrict_user_id=user)
    )
    foreign_token = await rpc_error(
        stub.ListSources(
            metadata_pb2.ListSourcesRequest(
                page_token=first.next_page_token, restrict_user_id=other
            )
        )
    )
    assert foreign_token.code() == INVALID
    unrestricted = await rpc_error(
        stub.ListSources(metadata_pb2.ListSourcesRequest(page_token=first.next_page_token))
    )
    assert unrestricted.code() == INVALID


# Grants --------------------------------------------------------------------------------


async def test_source_grants_set_list_delete(stub: Any) -> None:
    source = await create_source(stub, folder())
    source_id = source.name.removeprefix("sources/")
    users = sorted([await create_user(stub, "sgrantee") for _ in range(5)])
    for user_id in reversed(users):
        stored = await grant(stub, source, user_id, READER)
        assert stored.name == f"sources/{source_id}/grants/{user_id}"
        assert stored.user == f"users/{user_id}"
        assert stored.role == READER
    # An upsert: the role is replaced, the grant not duplicated.
    before = stored.update_time.ToDatetime()
    upgraded = await grant(stub, source, users[0], OWNER)
    assert upgraded.role == OWNER
    assert upgraded.update_time.ToDatetime() >= before

    listed: list[Any] = []
    token = ""
    while True:
        response = await stub.ListSourceGrants(
            metadata_pb2.ListSourceGrantsRequest(source_id=source_id, page_size=2, page_token=token)
        )
        listed.extend(response.grants)
        token = response.next_page_token
        if not token:
            break
    assert [g.user for g in listed] == [f"users/{u}" for u in users]
    assert [g.role for g in listed] == [OWNER] + [READER] * 4

    # A token of one source's grants does not continue another's.
    other = await create_source(stub, folder())
    other_id = other.name.removeprefix("sources/")
    first = await stub.ListSourceGrants(
        metadata_pb2.ListSourceGrantsRequest(source_id=source_id, page_size=1)
    )
    foreign = await rpc_error(
        stub.ListSourceGrants(
            metadata_pb2.ListSourceGrantsRequest(
                source_id=other_id, page_token=first.next_page_token
            )
        )
    )
    assert foreign.code() == INVALID
    empty = await stub.ListSourceGrants(metadata_pb2.ListSourceGrantsRequest(source_id=other_id))
    assert list(empty.grants) == []

    delete = metadata_pb2.DeleteSourceGrantRequest(source_id=source_id, user_id=users[1])
    await stub.DeleteSourceGrant(delete)
    again = await rpc_error(stub.DeleteSourceGrant(delete))
    assert again.code() == NOT_FOUND
    assert f"sources/{source_id}/grants/{users[1]}" in (again.details() or "")
    remaining = await stub.ListSourceGrants(
        metadata_pb2.ListSourceGrantsRequest(source_id=source_id)
    )
    assert [g.user for g in remaining.grants] == [f"users/{u}" for u in users if u != users[1]]


async def test_source_grant_not_found_names_what_is_missing(stub: Any) -> None:
    source = await create_source(stub, folder())
    source_id = source.name.removeprefix("sources/")
    user_id = await create_user(stub, "snf")
    cases = [
        ("absent", user_id, "sources/absent"),
        (source_id, "ghost", "users/ghost"),
        # Both absent: the source is named.
        ("absent", "ghost", "sources/absent"),
    ]
    for parent, user, named in cases:
        error = await rpc_error(
            stub.SetSourceGrant(
                metadata_pb2.SetSourceGrantRequest(source_id=parent, user_id=user, role=READER)
            )
        )
        assert error.code() == NOT_FOUND
        assert named in (error.details() or "")
    listing = await rpc_error(
        stub.ListSourceGrants(metadata_pb2.ListSourceGrantsRequest(source_id="absent"))
    )
    assert listing.code() == NOT_FOUND
    assert "sources/absent" in (listing.details() or "")


async def test_deleting_the_owner_leaves_the_source_without_owner(stub: Any, db: Any) -> None:
    owner = await create_user(stub, "leaving")
    reader = await create_user(stub, "staying")
    source = await create_source(stub, folder(), owner=owner)
    await grant(stub, source, owner, READER)
    await grant(stub, source, reader, READER)

    await stub.DeleteUser(metadata_pb2.DeleteUserRequest(user_id=owner))
    kept = await get_source(stub, source.name, reader)
    assert kept.owner == ""
    assert kept.caller_role == READER
    assert kept.path == source.path
    # Their grants went with them; others' stay.
    grants = await stub.ListSourceGrants(
        metadata_pb2.ListSourceGrantsRequest(source_id=source.name.removeprefix("sources/"))
    )
    assert [g.user for g in grants.grants] == [f"users/{reader}"]
    assert await db.fetchval("SELECT count(*) FROM source_grants WHERE user_id = $1", owner) == 0
    # The reader still lists it.
    assert await list_all_sources(stub, 10, restrict_user_id=reader) == [kept]


# Operations ----------------------------------------------------------------------------


async def create_operation(stub: Any, collection_id: str, source: str = "") -> Any:
    response = await stub.CreateOperation(
        metadata_pb2.CreateOperationRequest(
            operation=operation_pb2.Operation(
                kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                collection=f"collections/{collection_id}",
                source_path="/srv/corpus",
                source=source,
            )
        )
    )
    return response.operation


async def test_an_operation_carries_its_source(stub: Any) -> None:
    collection_id = await create_collection(stub, "opsrc")
    source = await create_source(stub, folder())
    created = await create_operation(stub, collection_id, source.name)
    assert created.source == source.name
    plain = await create_operation(stub, collection_id)
    assert plain.source == ""

    got = await stub.GetOperation(metadata_pb2.GetOperationRequest(name=created.name))
    assert got.operation.source == source.name
    listed = await stub.ListOperations(
        metadata_pb2.ListOperationsRequest(
            restrict_collections=True, collection_ids=[collection_id]
        )
    )
    assert {o.name: o.source for o in listed.operations} == {
        created.name: source.name,
        plain.name: "",
    }
    updated = await stub.UpdateOperation(
        metadata_pb2.UpdateOperationRequest(
            name=created.name, state=operation_pb2.OPERATION_STATE_RUNNING
        )
    )
    assert updated.operation.source == source.name
    cancelled = await stub.CancelOperation(metadata_pb2.CancelOperationRequest(name=created.name))
    assert cancelled.operation.source == source.name

    # History: the operation keeps naming a deleted source.
    await stub.DeleteSource(metadata_pb2.DeleteSourceRequest(name=source.name))
    got = await stub.GetOperation(metadata_pb2.GetOperationRequest(name=created.name))
    assert got.operation.source == source.name

    bad = await rpc_error(create_operation(stub, collection_id, "sources/Not Valid"))
    assert bad.code() == INVALID
    assert "operation.source" in field_violations(bad)


# Migration 0006 ------------------------------------------------------------------------


def migrated_id(slug: str, path: str) -> str:
    return f"{slug}-{hashlib.md5(path.encode()).hexdigest()[:8]}"


TEAM = "/srv/Team Notes"
REPORTS = "/data/2024_reports/"
SHARED = "/x"
LONG = "/deep/" + "A" * 80


async def test_0006_registers_the_folders_imported_before(postgres: PostgresServer) -> None:
    async with scratch_database(postgres, "sources_migration_check") as url:
        await schema.migrate(url, "0005")
        connection = await asyncpg.connect(url)
        try:
            operations = await seed_0005(connection)
            await schema.migrate(url)
            await check_0006(connection, operations)

            await schema.migrate(url, "0005", downgrade=True)
            tables = {
                r["tablename"]
                for r in await connection.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
            assert not {"sources", "source_grants"} & tables
            assert not await connection.fetchval(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'operations' AND column_name = 'source_id'"
            )
            # Deterministic: upgrading again gives the same sources.
            await schema.migrate(url)
            await check_0006(connection, operations)
        finally:
            await connection.close()


async def seed_0005(connection: Any) -> dict[str, str | None]:
    """Users, collections with owners, operations with source paths; the
    operations' ids and the path each should end up linked to."""
    for user_id in ("alice", "bob", "carol", "dave"):
        await connection.execute(
            "INSERT INTO users (id, role, password_hash) VALUES ($1, 2, 'h')", user_id
        )
    owners = {"c-alice": ["alice"], "c-bob": ["bob"], "c-none": [], "c-pair": ["carol", "bob"]}
    for collection_id, users in owners.items():
        await connection.execute(
            "INSERT INTO collections (id, chunk_tokens, overlap_tokens) VALUES ($1, 200, 40)",
            collection_id,
        )
        for user_id in users:
            await connection.execute(
                "INSERT INTO collection_grants (collection_id, user_id, role) VALUES ($1, $2, 1)",
                collection_id,
                user_id,
            )
    # dave only views c-alice: no grant from it.
    await connection.execute(
        "INSERT INTO collection_grants (collection_id, user_id, role) VALUES ('c-alice', 'dave', 3)"
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    imports = [
        ("c-alice", TEAM),
        ("c-bob", TEAM),
        ("c-alice", TEAM),
        ("c-none", REPORTS),  # the earliest with this path has no owner
        ("c-bob", REPORTS),
        ("c-pair", SHARED),  # two owners: the smaller id owns, the other reads
        ("c-alice", LONG),
        ("c-alice", ""),  # no path recorded: no source
    ]
    operations: dict[str, str | None] = {}
    for minute, (collection_id, path) in enumerate(imports):
        operation_id = await connection.fetchval(
            "INSERT INTO operations (id, kind, collection_id, source_path, state, create_time)"
            " VALUES (gen_random_uuid(), 1, $1, $2, 3, $3) RETURNING id",
            collection_id,
            path,
            start + timedelta(minutes=minute),
        )
        operations[str(operation_id)] = path or None
    return operations


async def check_0006(connection: Any, operations: dict[str, str | None]) -> None:
    ids = {
        TEAM: migrated_id("team-notes", TEAM),
        REPORTS: migrated_id("src-2024-reports", REPORTS),
        SHARED: migrated_id("x", SHARED),
        LONG: migrated_id("a" * 54, LONG),
    }
    sources = {
        row["id"]: (row["path"], row["display_name"], row["owner_user_id"])
        for row in await connection.fetch("SELECT * FROM sources")
    }
    assert sources == {
        ids[TEAM]: (TEAM, "Team Notes", "alice"),
        ids[REPORTS]: (REPORTS, "2024_reports", None),
        ids[SHARED]: (SHARED, "x", "bob"),
        ids[LONG]: (LONG, "A" * 80, "alice"),
    }
    assert len(ids[LONG]) == 63
    grants = {
        (row["source_id"], row["user_id"], row["role"])
        for row in await connection.fetch("SELECT * FROM source_grants")
    }
    assert grants == {
        (ids[TEAM], "bob", READER),
        (ids[REPORTS], "bob", READER),
        (ids[SHARED], "carol", READER),
    }
    linked = {
        str(row["id"]): row["source_id"]
        for row in await connection.fetch("SELECT id, source_id FROM operations")
    }
    assert linked == {
        operation_id: None if path is None else ids[path]
        for operation_id, path in operations.items()
    }
    # The first import's time is the registration's.
    first = await connection.fetchval("SELECT create_time FROM sources WHERE id = $1", ids[TEAM])
    assert first == datetime(2026, 1, 1, tzinfo=UTC)
