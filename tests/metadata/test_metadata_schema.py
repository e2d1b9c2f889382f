"""The Alembic migrations on a real PostgreSQL: up, down to nothing, up again;
the models agree with them; 0001 data survives 0002 both ways; 0003 replaces
0002's unused account tables and gives them back on downgrade. (0006's
registration of imported folders: test_metadata_sources.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from semantik_runner.stores import PostgresServer
from services.metadata import models, schema
from services.metadata.partitions import PARTITION_COUNT, partition_key, partition_name
from tests.metadata.conftest import REPO

TABLES_0001 = {"collections", "documents", "chunks", "operations"}
PARTITIONS = {partition_name(key) for key in range(PARTITION_COUNT)}
ACCOUNT_TABLES_0002 = {"users", "roles", "user_roles", "api_keys"}
ACCOUNT_TABLES = {"users", "refresh_tokens", "collection_grants", "api_keys"}
TABLES = TABLES_0001 | ACCOUNT_TABLES | PARTITIONS
SOURCE_TABLES = {"sources", "source_grants"}
HEAD_TABLES = TABLES | SOURCE_TABLES
VIEWS = {
    "chunk_partition_rows",
    "chunk_partition_skew",
    "chunk_partition_hot",
    "chunk_partition_collections",
}


@asynccontextmanager
async def scratch_database(postgres: PostgresServer, name: str) -> AsyncIterator[str]:
    """The URL of an empty database `name`, dropped afterwards."""
    admin = await asyncpg.connect(postgres.url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
        yield postgres.url.rsplit("/", 1)[0] + f"/{name}"
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def scratch_url(postgres: PostgresServer) -> AsyncIterator[str]:
    """A database of its own, so the running service's schema is untouched."""
    async with scratch_database(postgres, "migrations_check") as url:
        yield url


async def tables_and_version(url: str) -> tuple[set[str], str | None]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " UNION ALL SELECT viewname FROM pg_views WHERE schemaname = 'public'"
        )
        tables = {row["tablename"] for row in rows}
        version = None
        if "alembic_version" in tables:
            version = await connection.fetchval("SELECT version_num FROM alembic_version")
        return tables - {"alembic_version"}, version
    finally:
        await connection.close()


def alembic_cli(url: str, *args: str) -> None:
    """The `alembic` command line, as an operator would run it."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "services/metadata/alembic.ini", *args],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


async def test_upgrade_downgrade_upgrade(scratch_url: str) -> None:
    assert await tables_and_version(scratch_url) == (set(), None)

    # The service's own path (async engine, asyncpg driver).
    await schema.migrate(scratch_url)
    assert await tables_and_version(scratch_url) == (HEAD_TABLES | VIEWS, schema.head_revision())
    # Migrating again at head is a no-op, as on every service start.
    await schema.migrate(scratch_url)

    await schema.migrate(scratch_url, "base", downgrade=True)
    assert await tables_and_version(scratch_url) == (set(), None)

    # The command-line path through env.py.
    alembic_cli(scratch_url, "upgrade", "head")
    assert await tables_and_version(scratch_url) == (HEAD_TABLES | VIEWS, schema.head_revision())
    alembic_cli(scratch_url, "downgrade", "base")
    assert await tables_and_version(scratch_url) == (set(), None)
    alembic_cli(scratch_url, "upgrade", "head")
    assert await tables_and_version(scratch_url) == (HEAD_TABLES | VIEWS, schema.head_revision())


async def test_models_agree_with_the_migrations(scratch_url: str) -> None:
    await schema.migrate(scratch_url)
    engine = create_async_engine(schema.sqlalchemy_url(scratch_url), poolclass=NullPool)

    def include_name(name: str | None, type_: str, parent: object) -> bool:
        # Partitions belong to `chunks`; alembic_version to Alembic.
        return not (type_ == "table" and (name in PARTITIONS or name == "alembic_version"))

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": include_name,
            },
        )
        return list(compare_metadata(context, models.metadata))

    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(compare)
    finally:
        await engine.dispose()
    assert differences == []


async def test_0001_chunks_move_into_partitions_and_back(scratch_url: str) -> None:
    await schema.migrate(scratch_url, "0001")
    connection = await asyncpg.connect(scratch_url)
    try:
        for collection_id in ("alpha", "beta"):
            await connection.execute(
                "INSERT INTO collections (id, chunk_tokens, overlap_tokens) VALUES ($1, 200, 40)",
                collection_id,
            )
            document_id = await connection.fetchval(
                "INSERT INTO documents (id, collection_id, source_path, state)"
                " VALUES (gen_random_uuid(), $1, '/a', 1) RETURNING id",
                collection_id,
            )
            await connection.execute(
                "INSERT INTO chunks (id, document_id, collection_id, chunk_index, text,"
                " start_offset, end_offset, token_count)"
                " SELECT gen_random_uuid(), $1, $2, i, 'text ' || i, 0, 5, 1"
                " FROM generate_series(0, 9) i",
                document_id,
                collection_id,
            )
        before = await connection.fetch("SELECT * FROM chunks ORDER BY id")

        await schema.migrate(scratch_url)
        placed = await connection.fetch(
            "SELECT tableoid::regclass::text AS part, partition_key, collection_id FROM chunks"
        )
        assert len(placed) == 20
        for row in placed:
            assert row["partition_key"] == partition_key(row["collection_id"])
            assert row["part"] == partition_name(row["partition_key"])

        await schema.migrate(scratch_url, "0001", downgrade=True)
        after = await connection.fetch("SELECT * FROM chunks ORDER BY id")
        assert [dict(r) for r in after] == [dict(r) for r in before]
    finally:
        await connection.close()


async def columns(connection: asyncpg.Connection, table: str) -> list[tuple[str, str, bool]]:
    rows = await connection.fetch(
        "SELECT column_name, data_type, is_nullable = 'YES' AS nullable"
        " FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1"
        " ORDER BY ordinal_position",
        table,
    )
    return [(row["column_name"], row["data_type"], row["nullable"]) for row in rows]


async def test_0003_replaces_the_account_tables_and_gives_them_back(scratch_url: str) -> None:
    await schema.migrate(scratch_url, "0002")
    assert await tables_and_version(scratch_url) == (
        TABLES_0001 | ACCOUNT_TABLES_0002 | PARTITIONS | VIEWS,
        "0002",
    )
    connection = await asyncpg.connect(scratch_url)
    try:
        before = {table: await columns(connection, table) for table in ACCOUNT_TABLES_0002}

        await schema.migrate(scratch_url, "0003")
        assert await tables_and_version(scratch_url) == (TABLES | VIEWS, "0003")
        assert [c[0] for c in await columns(connection, "users")] == [
            "id",
            "display_name",
            "role",
            "password_hash",
            "token_version",
            "create_time",
            "update_time",
        ]
        # The CHECKs hold the enums' ranges (autogenerate does not compare them).
        await connection.execute("INSERT INTO users (id, role, password_hash) VALUES ('a', 1, 'h')")
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO users (id, role, password_hash) VALUES ('b', 0, 'h')"
            )
        await connection.execute(
            "INSERT INTO collections (id, chunk_tokens, overlap_tokens) VALUES ('c', 200, 40)"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO collection_grants (collection_id, user_id, role) VALUES ('c', 'a', 4)"
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO api_keys (id, user_id, secret_hash, collections, verbs)"
                " VALUES ('abcdefgh', 'a', '\\x00', '{c}', '{1}')"
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO api_keys (id, user_id, secret_hash, collections, verbs)"
                " VALUES ('abcdefgh', 'a', $1, '{c}', '{0}')",
                bytes(32),
            )

        await schema.migrate(scratch_url, "0002", downgrade=True)
        assert await tables_and_version(scratch_url) == (
            TABLES_0001 | ACCOUNT_TABLES_0002 | PARTITIONS | VIEWS,
            "0002",
        )
        after = {table: await columns(connection, table) for table in ACCOUNT_TABLES_0002}
        assert after == before
    finally:
        await connection.close()
