"""`make backup` / `make restore` round trip, and backup retention."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from semantik_runner.stores import PostgresServer
from services.metadata import schema
from services.metadata.admin import Retention, backup_name, backup_time, backups_to_keep
from tests.metadata.conftest import REPO
from tests.metadata.test_metadata_partitions import add_chunks

TABLES = ("collections", "documents", "chunks", "operations", "users", "alembic_version")


@pytest.fixture
async def backup_url(postgres: PostgresServer) -> AsyncIterator[str]:
    admin = await asyncpg.connect(postgres.url)
    try:
        await admin.execute("DROP DATABASE IF EXISTS backup_check WITH (FORCE)")
        await admin.execute("CREATE DATABASE backup_check")
        yield postgres.url.rsplit("/", 1)[0] + "/backup_check"
        await admin.execute("DROP DATABASE IF EXISTS backup_check WITH (FORCE)")
    finally:
        await admin.close()


async def snapshot(url: str) -> dict[str, str]:
    """Every row of every table, as text, in a stable order; and the views."""
    connection = await asyncpg.connect(url)
    try:
        out: dict[str, str] = {}
        for table in TABLES:
            out[table] = await connection.fetchval(
                f"SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {table} t"
            )
        out["partitions"] = await connection.fetchval(
            "SELECT string_agg(part || ':' || n, ',' ORDER BY part) FROM"
            " (SELECT tableoid::regclass::text AS part, count(*) AS n FROM chunks GROUP BY 1) p"
        )
        out["views"] = await connection.fetchval(
            "SELECT string_agg(viewname, ',' ORDER BY viewname) FROM pg_views"
            " WHERE schemaname = 'public'"
        )
        return out
    finally:
        await connection.close()


def make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_backup_drop_restore_compare(backup_url: str, tmp_path: Path) -> None:
    await schema.migrate(backup_url)
    connection = await asyncpg.connect(backup_url)
    try:
        await add_chunks(connection, "kept", 200)
        await add_chunks(connection, "also-kept", 20)
        await connection.execute(
            "INSERT INTO users (id, role, password_hash) VALUES ('alice', 1, '$argon2id$x')"
        )
    finally:
        await connection.close()
    before = await snapshot(backup_url)
    assert "kept" in before["chunks"]

    made = make("backup", DATABASE_URL=backup_url, BACKUP_DIR=str(tmp_path))
    assert made.returncode == 0, made.stderr
    dumps = sorted(await asyncio.to_thread(tmp_path.glob, "semantik-*.dump"))
    assert len(dumps) == 1
    assert backup_time(dumps[0]) is not None
    assert made.stdout.strip().endswith(dumps[0].name)

    # Disaster: the database is gone.
    admin_url = backup_url.rsplit("/", 1)[0] + "/postgres"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute("DROP DATABASE backup_check WITH (FORCE)")
    finally:
        await admin.close()

    usage = make("restore", DATABASE_URL=backup_url)
    assert usage.returncode != 0
    assert "BACKUP_FILE" in usage.stderr

    restored = make("restore", f"BACKUP_FILE={dumps[0]}", DATABASE_URL=backup_url)
    assert restored.returncode == 0, restored.stderr
    assert await snapshot(backup_url) == before

    # A bad file is refused before anything is dropped.
    bogus = tmp_path / "semantik-20000101T000000Z.dump"
    await asyncio.to_thread(bogus.write_bytes, b"not a dump")
    refused = make("restore", f"BACKUP_FILE={bogus}", DATABASE_URL=backup_url)
    assert refused.returncode != 0
    assert await snapshot(backup_url) == before


def test_retention_keeps_7_daily_4_weekly_12_monthly() -> None:
    now = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    # Two backups a day for two years.
    times = [now - timedelta(hours=12 * i) for i in range(2 * 730)]
    keep = backups_to_keep(times, Retention(daily=7, weekly=4, monthly=12))

    days = sorted({t.date() for t in keep}, reverse=True)
    assert days[:7] == [now.date() - timedelta(days=i) for i in range(7)]
    # The newest of each kept day, week and month.
    for at in keep:
        assert at == max(t for t in times if t.date() == at.date())
    weeks = {t.isocalendar()[:2] for t in keep}
    newest_weeks = sorted({t.isocalendar()[:2] for t in times}, reverse=True)[:4]
    assert set(newest_weeks) <= weeks
    months = sorted({(t.year, t.month) for t in keep}, reverse=True)
    assert months == [(2025, m) for m in range(12, 0, -1)]
    assert len(keep) <= 7 + 4 + 12
    assert min(keep) >= datetime(2025, 1, 1, tzinfo=UTC)


def test_make_backup_prune_deletes_what_retention_drops(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    times = [now - timedelta(days=i) for i in range(60)]
    for at in times:
        (tmp_path / backup_name(at)).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a backup")
    pruned = make("backup-prune", BACKUP_DIR=str(tmp_path))
    assert pruned.returncode == 0, pruned.stderr
    left = {backup_time(p) for p in tmp_path.glob("semantik-*.dump")}
    expected = {t.replace(microsecond=0) for t in backups_to_keep(times, Retention(7, 4, 12))}
    assert left == expected
    assert 7 <= len(left) < 60
    assert (tmp_path / "notes.txt").exists()
