"""The database schema's version: Alembic migrations run from the service.

The service migrates itself (`upgrade head`) as soon as PostgreSQL answers,
so a fresh database needs no separate step; readiness waits for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

HERE = Path(__file__).resolve().parent
ALEMBIC_INI = HERE / "alembic.ini"
MIGRATIONS = HERE / "migrations"

# Any fixed 64-bit number: pg_advisory_xact_lock key shared by all migrators.
MIGRATION_LOCK_KEY = 0x5E4A471C


def sqlalchemy_url(database_url: str | None) -> str:
    """DATABASE_URL (`postgresql://…`) as SQLAlchemy's asyncpg URL."""
    url = database_url or os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/semantik"
    )
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"not a postgresql:// URL: {url!r}")
    return f"postgresql+asyncpg://{rest}"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS))
    if database_url is not None:
        # ConfigParser interpolates '%', which URL-encoded passwords contain.
        config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


async def migrate(database_url: str, revision: str = "head", *, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the database to `revision` in one transaction."""
    engine = create_async_engine(
        sqlalchemy_url(database_url), poolclass=NullPool, connect_args={"timeout": 10}
    )
    config = alembic_config(database_url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        if downgrade:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()
