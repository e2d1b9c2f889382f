"""Alembic environment of the metadata schema (SQLAlchemy async, asyncpg driver).

Two ways in:
- the service (`services.metadata.schema`) hands over an open connection in
  `config.attributes["connection"]`, inside its own transaction;
- the `alembic` command line, which connects here with DATABASE_URL.
Either way an advisory lock serialises concurrent migrators (several replicas
starting at once), and PostgreSQL's transactional DDL makes each run all or
nothing.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.metadata.schema import MIGRATION_LOCK_KEY, sqlalchemy_url

config = context.config


def _run(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_command_line() -> None:
    url = config.get_main_option("sqlalchemy.url") or sqlalchemy_url(None)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("offline (--sql) migrations are not supported; run against a database")
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_from_command_line())


main()
