"""Pool settings: SQLAlchemy names onto asyncpg, and pre-ping on a real server."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg  # type: ignore[import-untyped]
import grpc
import pytest

from semantik_runner.stores import PostgresServer
from servicekit.config import ConfigError
from servicekit.errors import ServiceError
from services.metadata.config import MetadataConfig
from services.metadata.store import MetadataStore


def test_pool_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "8")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "4")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "2.5")
    monkeypatch.setenv("DB_POOL_RECYCLE", "600")
    monkeypatch.setenv("DB_POOL_PRE_PING", "true")
    config = MetadataConfig.from_env()
    assert config.pool_max_size == 12
    assert (config.pool_timeout_s, config.pool_recycle_s, config.pool_pre_ping) == (2.5, 600, True)
    monkeypatch.setenv("DB_MAX_OVERFLOW", "-1")
    with pytest.raises(ConfigError, match="DB_MAX_OVERFLOW"):
        MetadataConfig.from_env()
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("DB_POOL_PRE_PING", "maybe")
    with pytest.raises(ConfigError, match="DB_POOL_PRE_PING"):
        MetadataConfig.from_env()


async def ready_store(url: str, pre_ping: bool) -> MetadataStore:
    config = MetadataConfig(
        address="unused",
        database_url=url,
        pool_size=1,
        max_overflow=0,
        pool_min_size=1,
        pool_timeout_s=5,
        pool_recycle_s=0,
        pool_pre_ping=pre_ping,
        command_timeout_s=10,
    )
    store = MetadataStore(config)
    await store.start()
    for _ in range(300):
        try:
            await store.check_ready()
            return store
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError("store never became ready")


@pytest.mark.parametrize("pre_ping", [True, False])
async def test_a_killed_connection_is_replaced(postgres: PostgresServer, pre_ping: bool) -> None:
    # A database of its own: the session's service also connects as
    # 'semantik-metadata' and must not be disturbed.
    admin = await asyncpg.connect(postgres.url)
    try:
        await admin.execute("DROP DATABASE IF EXISTS pool_check WITH (FORCE)")
        await admin.execute("CREATE DATABASE pool_check")
    finally:
        await admin.close()
    url = postgres.url.rsplit("/", 1)[0] + "/pool_check"
    ours = "application_name = 'semantik-metadata' AND datname = 'pool_check'"
    store = await ready_store(url, pre_ping)
    try:
        await store.list_collections(None, 1, timeout_s=5)
        admin = await asyncpg.connect(postgres.url)
        try:
            killed = await admin.fetchval(
                f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {ours}"
            )
        finally:
            await admin.close()
        assert killed >= 1
        # The pooled connection is dead. With pre-ping the next request
        # still succeeds. Without it, that request may fail once, as a
        # retryable UNAVAILABLE that expires the pool (never INTERNAL); the
        # one after succeeds on a fresh connection.
        if pre_ping:
            await store.list_collections(None, 1, timeout_s=5)
        else:
            try:
                await store.list_collections(None, 1, timeout_s=5)
            except ServiceError as error:
                assert error.code == grpc.StatusCode.UNAVAILABLE
            await store.list_collections(None, 1, timeout_s=5)
        admin = await asyncpg.connect(postgres.url)
        try:
            assert await admin.fetchval(f"SELECT count(*) FROM pg_stat_activity WHERE {ours}") == 1
        finally:
            await admin.close()
    finally:
        await store.close()


def test_config_is_frozen() -> None:
    config = MetadataConfig.from_env()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pool_size = 3  # type: ignore[misc]
