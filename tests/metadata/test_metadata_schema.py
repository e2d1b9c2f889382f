"""The Alembic migrations on a real PostgreSQL: up, down to nothing, up again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from semantik_runner.stores import PostgresServer
from services.metadata import schema
from tests.metadata.conftest import REPO

TABLES = {"collections", "documents", "chunks", "operations"}


@pytest.fixture
async def scratch_url(postgres: PostgresServer) -> AsyncIterator[str]:
    """A database of its own, so the running service's schema is untouched."""
    admin = await asyncpg.connect(postgres.url)
    try:
        await admin.execute("DROP DATABASE IF EXISTS migrations_check")
        await admin.execute("CREATE DATABASE migrations_check")
        yield postgres.url.rsplit("/", 1)[0] + "/migrations_check"
        await admin.execute("DROP DATABASE migrations_check WITH (FORCE)")
    finally:
        await admin.close()


async def tables_and_version(url: str) -> tuple[set[str], str | None]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
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
    assert await tables_and_version(scratch_url) == (TABLES, schema.head_revision())
    # Migrating again at head is a no-op, as on every service start.
    await schema.migrate(scratch_url)

    await schema.migrate(scratch_url, "base", downgrade=True)
    assert await tables_and_version(scratch_url) == (set(), None)

    # The command-line path through env.py.
    alembic_cli(scratch_url, "upgrade", "head")
    assert await tables_and_version(scratch_url) == (TABLES, schema.head_revision())
    alembic_cli(scratch_url, "downgrade", "base")
    assert await tables_and_version(scratch_url) == (set(), None)
    alembic_cli(scratch_url, "upgrade", "head")
    assert await tables_and_version(scratch_url) == (TABLES, schema.head_revision())
