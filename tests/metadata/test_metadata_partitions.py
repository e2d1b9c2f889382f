"""Chunk partitions: one key function pair, one partition per hydration, the
monitoring views and `semantik-admin partitions` on top of them."""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from semantik_runner.stores import PostgresServer
from services.metadata import schema
from services.metadata.partitions import PARTITION_COUNT, partition_key, partition_name
from services.metadata.store import CHUNK_COLUMNS, HYDRATE_SQL
from tests.metadata.conftest import REPO


@pytest.fixture(scope="module")
async def partitions_url(postgres: PostgresServer) -> AsyncIterator[str]:
    admin = await asyncpg.connect(postgres.url)
    try:
        await admin.execute("DROP DATABASE IF EXISTS partitions_check WITH (FORCE)")
        await admin.execute("CREATE DATABASE partitions_check")
        url = postgres.url.rsplit("/", 1)[0] + "/partitions_check"
        await schema.migrate(url)
        yield url
        await admin.execute("DROP DATABASE partitions_check WITH (FORCE)")
    finally:
        await admin.close()


def ids_in_distinct_partitions(count: int, prefix: str) -> list[str]:
    found: dict[int, str] = {}
    n = 0
    while len(found) < count:
        candidate = f"{prefix}-{n}"
        found.setdefault(partition_key(candidate), candidate)
        n += 1
    return list(found.values())


async def add_chunks(
    connection: Any, collection_id: str, chunks: int, path: str = "/doc"
) -> list[uuid.UUID]:
    """A collection with one document of `chunks` chunks, written as the store writes."""
    await connection.execute(
        "INSERT INTO collections (id, chunk_tokens, overlap_tokens) VALUES ($1, 200, 40)"
        " ON CONFLICT DO NOTHING",
        collection_id,
    )
    document_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO documents (id, collection_id, source_path, state, chunk_count)"
        " VALUES ($1, $2, $3, 1, $4)",
        document_id,
        collection_id,
        path,
        chunks,
    )
    ids = [uuid.uuid4() for _ in range(chunks)]
    key = partition_key(collection_id)
    await connection.copy_records_to_table(
        "chunks",
        columns=CHUNK_COLUMNS,
        records=[
            (key, chunk_id, document_id, collection_id, i, f"text {i}", 0, 6, 2, 0, "")
            for i, chunk_id in enumerate(ids)
        ],
    )
    return ids


async def test_python_and_sql_partition_keys_agree(partitions_url: str) -> None:
    rng = random.Random(7)
    alphabet = string.ascii_lowercase + string.digits + "-"
    ids = [
        rng.choice(string.ascii_lowercase) + "".join(rng.choices(alphabet, k=rng.randint(0, 62)))
        for _ in range(5000)
    ]
    ids += ["a", "z" * 63, "ünïcode-ß", "日本語"]
    connection = await asyncpg.connect(partitions_url)
    try:
        sql_keys = await connection.fetch(
            "SELECT id, chunk_partition_key(id) AS key FROM unnest($1::text[]) AS id", ids
        )
        assert {r["id"]: r["key"] for r in sql_keys} == {i: partition_key(i) for i in ids}
        # Every partition is reachable, and only those that exist.
        assert {partition_key(i) for i in ids} == set(range(PARTITION_COUNT))

        # A row whose stored key is not the function's is refused.
        await connection.execute(
            "INSERT INTO collections (id, chunk_tokens, overlap_tokens) VALUES ('keyed', 200, 40)"
        )
        wrong = (partition_key("keyed") + 1) % PARTITION_COUNT
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO chunks (partition_key, collection_id, id, document_id, chunk_index,"
                " text, start_offset, end_offset, token_count)"
                " VALUES ($1, 'keyed', gen_random_uuid(), gen_random_uuid(), 0, 'x', 0, 1, 1)",
                wrong,
            )
    finally:
        await connection.close()


def scanned_relations(plan: Any) -> list[str]:
    found: list[str] = []
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.append(plan["Relation Name"])
        for value in plan.values():
            found += scanned_relations(value)
    elif isinstance(plan, list):
        for item in plan:
            found += scanned_relations(item)
    return found


@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_hydration_touches_one_partition(partitions_url: str, plan_mode: str) -> None:
    connection = await asyncpg.connect(partitions_url)
    try:
        collections = ids_in_distinct_partitions(3, f"explain-{plan_mode[6:12]}")
        chunk_ids = {c: await add_chunks(connection, c, 50) for c in collections}
        target = collections[1]
        wanted = chunk_ids[target][:10]
        await connection.execute(f"SET plan_cache_mode = {plan_mode}")
        # The store's own statement, prepared as asyncpg prepares it.
        statement = await connection.prepare(f"EXPLAIN (ANALYZE, FORMAT JSON) {HYDRATE_SQL}")
        for _ in range(6):  # past the point where PostgreSQL may switch plans
            raw = await statement.fetchval(wanted, target, partition_key(target))
        plan = json.loads(raw) if isinstance(raw, str) else raw
        relations = scanned_relations(plan)
        chunk_relations = {r for r in relations if r.startswith("chunks")}
        assert chunk_relations == {partition_name(partition_key(target))}, relations
        rows = await connection.fetch(HYDRATE_SQL, wanted, target, partition_key(target))
        assert {r["id"] for r in rows} == set(wanted)
    finally:
        await connection.close()


def admin(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.metadata.admin", "--database-url", url, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_views_and_partition_tool(partitions_url: str) -> None:
    big, small, idle = ids_in_distinct_partitions(3, "views")
    connection = await asyncpg.connect(partitions_url)
    try:
        await add_chunks(connection, big, 3000)
        await add_chunks(connection, small, 1500)
        await connection.execute(
            "INSERT INTO collections (id, chunk_tokens, overlap_tokens) VALUES ($1, 200, 40)",
            idle,
        )
        # Replace `small`'s chunks by fewer: dead rows for the VACUUM advice.
        await connection.execute("DELETE FROM chunks WHERE collection_id = $1", small)
        await add_chunks(connection, small, 100, path="/doc2")
        await connection.execute(
            "DELETE FROM documents WHERE collection_id = $1 AND source_path = '/doc'", small
        )
        # Our pending counters first (scans and writes: the activity), then
        # ANALYZE, which sets live and dead rows to what it counted.
        await connection.execute("SELECT pg_stat_force_next_flush()")
        await connection.execute("SELECT 1")  # ends a transaction: the flush happens
        await connection.execute("ANALYZE chunks")
        exact = {
            r["partition_key"]: r["n"]
            for r in await connection.fetch(
                "SELECT partition_key, count(*) AS n FROM chunks GROUP BY 1"
            )
        }
        rows = await connection.fetch("SELECT * FROM chunk_partition_rows")
        assert len(rows) == PARTITION_COUNT
        live = {r["partition_key"]: r["live_rows"] for r in rows if r["live_rows"]}
        # Other tests of this module write here too; ours are exact.
        for collection_id in (big, small):
            key = partition_key(collection_id)
            assert live[key] == exact[key]
        assert {r["partition_name"] for r in rows} == {
            partition_name(k) for k in range(PARTITION_COUNT)
        }
        owners = {r["partition_key"]: r["collections"] for r in rows}
        assert owners[partition_key(idle)] >= 1
        skew = await connection.fetchrow("SELECT * FROM chunk_partition_skew")
        assert skew["total_rows"] == sum(exact.values())
        assert skew["largest_partition"] == partition_key(big)
        assert skew["max_to_mean"] > 1
    finally:
        await connection.close()

    result = admin(partitions_url, "partitions", "full", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"summary", "hot", "skew", "recommendations", "partitions"}
    assert report["summary"]["total_rows"] == sum(exact.values())
    assert report["summary"]["largest_partition"] == partition_key(big)
    assert report["skew"]["largest"][0]["collections"] == [big]
    hot_keys = [h["partition_key"] for h in report["hot"]]
    assert partition_key(big) in hot_keys
    assert partition_key(idle) not in hot_keys
    kinds = {(r["kind"], r["partition"]) for r in report["recommendations"]}
    assert ("vacuum", partition_name(partition_key(small))) in kinds
    assert ("hot", partition_name(partition_key(big))) in kinds
    assert report["summary"]["status"] == "attention"

    for report_name in ("summary", "hot", "skew", "recommend"):
        text = admin(partitions_url, "partitions", report_name)
        assert text.returncode == 0, text.stderr
        assert partition_name(partition_key(big)) in text.stdout or report_name == "summary"
    summary_text = admin(partitions_url, "partitions")
    assert f"p{partition_key(big):02d}" in summary_text.stdout
    assert "ATTENTION" in summary_text.stdout


def test_partition_tool_fails_cleanly_without_a_database() -> None:
    result = admin("postgresql://postgres@127.0.0.1:1/none", "partitions", "--json")
    assert result.returncode == 1
    assert result.stderr.startswith("semantik-admin:")
    assert Counter(result.stdout) == Counter()
