"""PostgreSQL access: the only module of the service that speaks SQL.

The asyncpg pool is made lazily and survives PostgreSQL going away: a failed
connection is expired from the pool and the next call connects afresh, so the
service never has to restart. Every statement runs with `timeout=` set to what
is left of the caller's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import grpc

from semantik.v1 import grant_pb2, operation_pb2, source_pb2
from servicekit.errors import ServiceError, already_exists, unavailable
from services.metadata import schema
from services.metadata.config import MetadataConfig
from services.metadata.partitions import partition_key
from services.metadata.resources import FINAL_OPERATION_STATES, Row

log = logging.getLogger(__name__)

# Failures that mean "the database is not reachable right now", not "the
# request is wrong": the caller may retry once PostgreSQL is back.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.InsufficientResourcesError,  # too many connections
    # A pooled connection whose server side was killed can fail mid-teardown
    # with this instead of a connection error; it is just as retryable.
    asyncpg.InternalClientError,
)

COLLECTION_COLUMNS = """
    c.id, c.display_name, c.description, c.embedding_model, c.embedding_dimensions,
    c.chunk_tokens, c.overlap_tokens, c.chunking_strategy, c.create_time,
    GREATEST(c.update_time, s.last_indexed) AS update_time,
    COALESCE(s.document_count, 0) AS document_count,
    COALESCE(s.chunk_count, 0) AS chunk_count
"""
# Counts are computed on read rather than kept in counters on the collection
# row: concurrent UpsertDocument calls then never contend on one row lock.
COLLECTION_STATS = """
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE d.state = 1) AS document_count,
               sum(d.chunk_count) AS chunk_count,
               max(d.create_time) AS last_indexed
        FROM documents d WHERE d.collection_id = c.id
    ) s ON true
"""
# asyncpg's max_inactive_connection_lifetime: idle connections (the overflow
# above DB_POOL_SIZE, after a burst) are closed after this long.
OVERFLOW_IDLE_S = 60.0
STATEMENT_CACHE_SIZE = 256

CHUNK_COLUMNS = (
    "partition_key",
    "id",
    "document_id",
    "collection_id",
    "chunk_index",
    "text",
    "start_offset",
    "end_offset",
    "token_count",
    "page",
    "heading",
)


# One round trip for any number of ids. `partition_key = $3` prunes to the
# collection's one partition, at plan time with a custom plan and at executor
# start with a generic one (a test checks both with EXPLAIN).
HYDRATE_SQL = """
    SELECT c.id, c.chunk_index, c.text, c.start_offset, c.end_offset,
           c.token_count, c.page, c.heading, c.document_id, d.source_path
    FROM chunks c JOIN documents d ON d.id = c.document_id
    WHERE c.partition_key = $3 AND c.collection_id = $2 AND c.id = ANY($1::uuid[])
"""


# A user's grants as {collection id: role}, NULL when none (jsonb decodes to dict).
USER_GRANTS = """
    (SELECT jsonb_object_agg(g.collection_id, g.role)
     FROM collection_grants g WHERE g.user_id = u.id) AS grants
"""
USER_COLUMNS = "u.id, u.display_name, u.role, u.password_hash, u.token_version, u.create_time"
API_KEY_FIELDS = (
    "id",
    "user_id",
    "display_name",
    "secret_hash",
    "collections",
    "verbs",
    "expire_time",
    "create_time",
)
# ResolvePrincipal by user id: the user and their grants, one statement.
# $2 is the access token's sign-in (refresh token family), or NULL: a family
# with any revoked token is a revoked sign-in (logout, reuse, password change).
RESOLVE_USER_SQL = f"""
    SELECT {USER_COLUMNS}, {USER_GRANTS},
           EXISTS (SELECT 1 FROM refresh_tokens r
                   WHERE r.family_id = $2 AND r.revoke_time IS NOT NULL) AS session_revoked
    FROM users u WHERE u.id = $1
"""
# ResolvePrincipal by key id: the unrevoked key, its owner and their grants,
# one statement that also records the key's use. last_used_time is written
# at most once a minute per key, and SKIP LOCKED means a call never waits on
# another call writing it: the hot path stays a read.
RESOLVE_API_KEY_SQL = f"""
    WITH touched AS (
        UPDATE api_keys SET last_used_time = now()
        WHERE id = (
            SELECT id FROM api_keys
            WHERE id = $1 AND revoke_time IS NULL
              AND (last_used_time IS NULL OR last_used_time < now() - interval '1 minute')
            FOR UPDATE SKIP LOCKED
        )
    )
    SELECT {USER_COLUMNS}, {USER_GRANTS},
           {", ".join(f"k.{name} AS key_{name}" for name in API_KEY_FIELDS)}
    FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE k.id = $1 AND k.revoke_time IS NULL
"""


# A source with the role of user $1 (NULL: none) on it: OWNER for its owner,
# else the role of their grant, else UNSPECIFIED.
SOURCE_COLUMNS = f"""
    s.*,
    CASE WHEN s.owner_user_id = $1::text THEN {source_pb2.SOURCE_ROLE_OWNER}
         ELSE COALESCE((SELECT g.role FROM source_grants g
                        WHERE g.source_id = s.id AND g.user_id = $1::text),
                       {source_pb2.SOURCE_ROLE_UNSPECIFIED})
    END AS caller_role
"""


@dataclass(frozen=True)
class GrantTable:
    """A table of per-user roles on one kind of parent (collections,
    sources): the same statements serve both."""

    table: str
    parent_table: str
    parent_column: str
    # Missing.kind of an absent parent.
    parent_kind: str

    @property
    def upsert_sql(self) -> str:
        return f"""
            INSERT INTO {self.table} ({self.parent_column}, user_id, role)
            VALUES ($1, $2, $3)
            ON CONFLICT ({self.parent_column}, user_id) DO UPDATE SET
                role = EXCLUDED.role, update_time = now()
            RETURNING *
        """

    @property
    def page_sql(self) -> str:
        return (
            f"SELECT * FROM {self.table} WHERE {self.parent_column} = $1"
            " AND ($2::text IS NULL OR user_id > $2) ORDER BY user_id LIMIT $3"
        )

    @property
    def parent_exists_sql(self) -> str:
        return f"SELECT EXISTS (SELECT 1 FROM {self.parent_table} WHERE id = $1)"

    @property
    def delete_sql(self) -> str:
        return (
            f"DELETE FROM {self.table} WHERE {self.parent_column} = $1 AND user_id = $2"
            " RETURNING user_id"
        )


COLLECTION_GRANTS = GrantTable("collection_grants", "collections", "collection_id", "collection")
SOURCE_GRANTS = GrantTable("source_grants", "sources", "source_id", "source")


@dataclass(frozen=True)
class DocumentFilters:
    """Optional conditions of a document listing; None matches everything."""

    path_prefix: str | None = None
    mime_type: str | None = None
    modified_after: datetime | None = None
    modified_before: datetime | None = None


class Deadline:
    """What is left of one request's time, shared by its statements."""

    def __init__(self, timeout_s: float) -> None:
        self._end = time.monotonic() + timeout_s

    def left(self) -> float:
        return max(self._end - time.monotonic(), 0.001)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end


def deadline_exceeded(what: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline exceeded {what}")


@dataclass(frozen=True)
class NewCollection:
    id: str
    display_name: str
    description: str
    embedding_model: str
    embedding_dimensions: int
    chunk_tokens: int
    overlap_tokens: int
    chunking_strategy: int


@dataclass(frozen=True)
class NewDocument:
    collection_id: str
    source_path: str
    content_hash: str
    size_bytes: int
    mime_type: str
    state: int
    error: str
    modify_time: datetime | None


@dataclass(frozen=True)
class NewChunk:
    id: uuid.UUID
    chunk_index: int
    text: str
    start_offset: int
    end_offset: int
    token_count: int
    page: int = 0
    heading: str = ""


@dataclass(frozen=True)
class Progress:
    documents_total: int
    documents_done: int
    documents_failed: int
    chunks_done: int
    bytes_done: int
    documents_unchanged: int = 0
    documents_removed: int = 0
    bytes_total: int = 0
    chunks_total: int = 0
    eta_seconds: float | None = None


@dataclass(frozen=True)
class ImportScope:
    """What an import operation was asked to read."""

    include_globs: tuple[str, ...] = ()
    exclude_globs: tuple[str, ...] = ()
    max_file_bytes: int = 0
    # The registered source read; None for an operation without one.
    source_id: str | None = None


@dataclass(frozen=True)
class OperationUpdate:
    state: int | None
    progress: Progress | None
    document_errors: list[dict[str, Any]]
    error_message: str
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


class OperationIsDone(Exception):
    """An update would move a finished operation to another state."""

    def __init__(self, state: int) -> None:
        super().__init__(f"the operation is done (state {state})")
        self.state = state


@dataclass(frozen=True)
class NewUser:
    id: str
    display_name: str
    role: int
    password_hash: str


@dataclass(frozen=True)
class NewSource:
    id: str
    path: str
    display_name: str
    owner_user_id: str | None


@dataclass(frozen=True)
class NewApiKey:
    id: str
    user_id: str
    display_name: str
    secret_hash: bytes
    collections: list[str]
    verbs: list[int]
    expire_time: datetime | None


class RotateOutcome(enum.Enum):
    ROTATED = "rotated"
    REUSED = "reused"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True)
class Rotation:
    outcome: RotateOutcome
    # The presented token's user and family; None when the token is unknown.
    user_id: str | None
    family_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Principal:
    """A user (for a key, its owner), their grants and the key if any."""

    user: Row
    grants: dict[str, int]
    api_key: Row | None
    # Only when resolved with a session id: that sign-in is revoked.
    session_revoked: bool = False


class UsersExist(Exception):
    """A bootstrap CreateUser (only_if_no_users) found a user already."""


class Missing(Exception):
    """A row a write refers to is absent: `kind` is "collection", "source" or "user"."""

    def __init__(self, kind: str, row_id: str) -> None:
        super().__init__(f"{kind} {row_id} not found")
        self.kind = kind
        self.row_id = row_id


class RefreshTokenExists(Exception):
    """A refresh token with this hash is stored already."""


class SourceExists(Exception):
    """A source with this `taken` ("id" or "path") is stored already."""

    def __init__(self, taken: str) -> None:
        super().__init__(f"a source with this {taken} exists")
        self.taken = taken


class PathTooLong(Exception):
    """A path too long for the index that keeps source paths unique."""


async def _init_connection(connection: Any) -> None:
    # jsonb as Python objects rather than JSON text.
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


class MetadataStore:
    def __init__(self, config: MetadataConfig) -> None:
        self._config = config
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._head = schema.head_revision()
        self._schema_ready = False
        self._schema_wanted = asyncio.Event()
        self._schema_wanted.set()
        self._schema_error = "not migrated yet"
        self._schema_task: asyncio.Task[None] | None = None
        self._recycle_task: asyncio.Task[None] | None = None

    # Life cycle -------------------------------------------------------------

    async def start(self) -> None:
        """Begins migrating in the background; returns at once."""
        self._schema_task = asyncio.create_task(self._keep_schema(), name="metadata-schema")

    async def close(self) -> None:
        for task in (self._schema_task, self._recycle_task):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=5)
            except Exception:  # an unreachable server: drop the sockets instead
                self._pool.terminate()
            self._pool = None

    async def _keep_schema(self) -> None:
        """Runs `upgrade head` whenever the schema is not known to be current.

        Retries until PostgreSQL answers, so the service may start before the
        database does.
        """
        while True:
            await self._schema_wanted.wait()
            try:
                await schema.migrate(self._config.database_url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # unreachable database or a failed migration
                reason = f"{type(exc).__name__}: {exc}"
                if reason != self._schema_error:
                    log.warning("schema migration waits: %s", reason)
                self._schema_error = reason
                await asyncio.sleep(1.0)
                continue
            log.info("schema at revision %s", self._head)
            self._schema_error = ""
            self._schema_ready = True
            self._schema_wanted.clear()

    def _schema_lost(self, reason: str) -> None:
        self._schema_ready = False
        self._schema_error = reason
        self._schema_wanted.set()

    async def check_ready(self) -> None:
        """Raises unless PostgreSQL answers and the schema is at head."""
        if not self._schema_ready:
            raise RuntimeError(f"schema not ready: {self._schema_error}")
        async with self._connection(2.0) as (connection, deadline):
            version = await connection.fetchval(
                "SELECT version_num FROM alembic_version", timeout=deadline.left()
            )
        if version != self._head:
            self._schema_lost(f"database at revision {version}, expected {self._head}")
            raise RuntimeError(self._schema_error)

    # Connections -------------------------------------------------------------

    async def _get_pool(self, deadline: Deadline) -> Any:
        async with self._pool_lock:
            if self._pool is None:
                # With min_size > 0 this connects, and fails while PostgreSQL
                # is down; the pool is then made again by the next call.
                config = self._config
                self._pool = await asyncpg.create_pool(
                    config.database_url,
                    min_size=config.pool_min_size,
                    max_size=config.pool_max_size,
                    command_timeout=config.command_timeout_s,
                    max_inactive_connection_lifetime=OVERFLOW_IDLE_S,
                    init=_init_connection,
                    timeout=min(deadline.left(), 10.0),
                    # Statements are prepared once per connection and reused
                    # (asyncpg's statement cache); every query here is a fixed
                    # string with $n parameters, so the cache always hits.
                    statement_cache_size=STATEMENT_CACHE_SIZE,
                    server_settings={
                        "application_name": "semantik-metadata",
                        # Backstop for a client that vanishes mid-statement;
                        # requests are bounded tighter by their deadline.
                        "statement_timeout": str(int(config.command_timeout_s * 1000)),
                        "idle_in_transaction_session_timeout": str(
                            int(config.command_timeout_s * 1000)
                        ),
                    },
                )
                if config.pool_recycle_s > 0 and self._recycle_task is None:
                    self._recycle_task = asyncio.create_task(
                        self._recycle(config.pool_recycle_s), name="metadata-pool-recycle"
                    )
            return self._pool

    async def _recycle(self, every_s: float) -> None:
        """DB_POOL_RECYCLE: no connection lives longer than `every_s`.

        asyncpg has no per-connection age limit; expiring the whole pool on a
        timer gives the same bound: a connection made after one tick is
        closed at the next (idle ones at once, busy ones when released).
        """
        while True:
            await asyncio.sleep(every_s)
            if self._pool is not None:
                await self._pool.expire_connections()

    async def _acquire(self, pool: Any, deadline: Deadline) -> Any:
        """A connection from the pool; with DB_POOL_PRE_PING, one that answered."""
        acquire_s = min(deadline.left(), self._config.pool_timeout_s)
        connection = await pool.acquire(timeout=acquire_s)
        if not self._config.pool_pre_ping:
            return connection
        try:
            await connection.execute("SELECT 1", timeout=min(deadline.left(), 5.0))
            return connection
        except Exception:
            # Any failed ping means the connection is unusable: dead (the
            # server restarted since), or mid-teardown, which asyncpg reports
            # as InternalClientError. It and its siblings are stale: drop
            # them all and take a fresh one.
            with contextlib.suppress(Exception):
                await pool.release(connection)
            await pool.expire_connections()
        acquire_s = min(deadline.left(), self._config.pool_timeout_s)
        return await pool.acquire(timeout=acquire_s)

    @asynccontextmanager
    async def _connection(self, timeout_s: float) -> AsyncIterator[tuple[Any, Deadline]]:
        """A pooled connection and the request's deadline; maps failures to statuses."""
        deadline = Deadline(timeout_s)
        if not self._schema_ready:
            raise unavailable(f"database not ready: {self._schema_error}")
        acquired = False
        try:
            pool = await self._get_pool(deadline)
            connection = await self._acquire(pool, deadline)
            acquired = True
            try:
                yield connection, deadline
            finally:
                await pool.release(connection)
        except ServiceError:
            raise
        except (TimeoutError, asyncpg.QueryCanceledError) as exc:
            if deadline.expired:
                raise deadline_exceeded("waiting for PostgreSQL") from exc
            if not acquired:
                raise unavailable("no free database connection (DB_POOL_SIZE)") from exc
            raise deadline_exceeded("in PostgreSQL (DB_COMMAND_TIMEOUT)") from exc
        except asyncpg.UndefinedTableError as exc:
            # The database was replaced or downgraded under us: migrate again.
            self._schema_lost(f"{type(exc).__name__}: {exc}")
            raise unavailable("database schema missing; migrating") from exc
        except CONNECTION_ERRORS as exc:
            log.warning("PostgreSQL unreachable: %s: %s", type(exc).__name__, exc)
            if self._pool is not None:
                # Connections made before an outage are dead; drop them all so
                # the next acquire connects afresh.
                await self._pool.expire_connections()
            raise unavailable(f"PostgreSQL unavailable: {type(exc).__name__}") from exc

    # Collections ---------------------------------------------------------------

    async def create_collection(
        self, new: NewCollection, timeout_s: float, owner_user_id: str | None = None
    ) -> Row | None:
        """The stored collection, or None when the id is taken.

        With `owner_user_id`, that user gets the owner grant in the same
        statement (so the same transaction); Missing("user") when absent.
        """
        async with self._connection(timeout_s) as (connection, deadline):
            try:
                row: Row | None = await connection.fetchrow(
                    """
                    WITH c AS (
                        INSERT INTO collections (id, display_name, description,
                            embedding_model, embedding_dimensions, chunk_tokens, overlap_tokens,
                            chunking_strategy)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $10)
                        ON CONFLICT (id) DO NOTHING
                        RETURNING *
                    ), owner AS (
                        INSERT INTO collection_grants (collection_id, user_id, role)
                        SELECT c.id, $8, $9 FROM c WHERE $8::text IS NOT NULL
                    )
                    SELECT * FROM c
                    """,
                    new.id,
                    new.display_name,
                    new.description,
                    new.embedding_model,
                    new.embedding_dimensions,
                    new.chunk_tokens,
                    new.overlap_tokens,
                    owner_user_id,
                    grant_pb2.COLLECTION_ROLE_OWNER,
                    new.chunking_strategy,
                    timeout=deadline.left(),
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise Missing("user", owner_user_id or "") from exc
            return row

    async def get_collection(self, collection_id: str, timeout_s: float) -> Row | None:
        async with self._connection(timeout_s) as (connection, deadline):
            row: Row | None = await connection.fetchrow(
                f"SELECT {COLLECTION_COLUMNS} FROM collections c {COLLECTION_STATS}"
                " WHERE c.id = $1",
                collection_id,
                timeout=deadline.left(),
            )
            return row

    async def list_collections(
        self,
        after_id: str | None,
        limit: int,
        timeout_s: float,
        only_ids: Sequence[str] | None = None,
    ) -> list[Row]:
        """A page by id; with `only_ids`, of those collections only (in SQL,
        so a page is as full as the rows allow)."""
        async with self._connection(timeout_s) as (connection, deadline):
            rows: list[Row] = await connection.fetch(
                f"SELECT {COLLECTION_COLUMNS} FROM collections c {COLLECTION_STATS}"
                " WHERE ($1::text IS NULL OR c.id > $1)"
                " AND ($3::text[] IS NULL OR c.id = ANY($3))"
                " ORDER BY c.id LIMIT $2",
                after_id,
                limit,
                None if only_ids is None else list(only_ids),
                timeout=deadline.left(),
            )
            return rows

    async def delete_collection(self, collection_id: str, timeout_s: float) -> bool:
        """Deletes the collection; its documents and chunks go by cascade.

        Its operations stay, as the history of what ran. Chunks are deleted
        in the same transaction.
        """
        async with (
            self._connection(timeout_s) as (connection, deadline),
            connection.transaction(),
        ):
            deleted = await connection.fetchval(
                "DELETE FROM collections WHERE id = $1 RETURNING id",
                collection_id,
                timeout=deadline.left(),
            )
            if deleted is None:
                return False
            # chunks.document_id is not a foreign key (it would cost COPY a
            # per-row check), so the chunks go here, from one partition.
            await connection.execute(
                "DELETE FROM chunks WHERE partition_key = $1 AND collection_id = $2",
                partition_key(collection_id),
                collection_id,
                timeout=deadline.left(),
            )
            return True

    # Documents -----------------------------------------------------------------

    async def upsert_document(
        self, document: NewDocument, chunks: Sequence[NewChunk], timeout_s: float
    ) -> tuple[Row, list[uuid.UUID]] | None:
        """Stores a document and its chunks in one transaction.

        Returns the stored row and the chunk ids of the replaced version that
        the new version does not reuse; None when the collection is absent.
        """
        key = partition_key(document.collection_id)
        async with self._connection(timeout_s) as (connection, deadline):
            try:
                async with connection.transaction():
                    row = await connection.fetchrow(
                        """
                        INSERT INTO documents (id, collection_id, source_path, content_hash,
                            size_bytes, mime_type, state, error, chunk_count, modify_time)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                        ON CONFLICT (collection_id, source_path) DO UPDATE SET
                            content_hash = EXCLUDED.content_hash,
                            size_bytes = EXCLUDED.size_bytes,
                            mime_type = EXCLUDED.mime_type,
                            state = EXCLUDED.state,
                            error = EXCLUDED.error,
                            chunk_count = EXCLUDED.chunk_count,
                            modify_time = EXCLUDED.modify_time,
                            create_time = now()
                        RETURNING *
                        """,
                        uuid.uuid4(),
                        document.collection_id,
                        document.source_path,
                        document.content_hash,
                        document.size_bytes,
                        document.mime_type,
                        document.state,
                        document.error,
                        len(chunks),
                        document.modify_time,
                        timeout=deadline.left(),
                    )
                    old_ids = await connection.fetch(
                        "DELETE FROM chunks WHERE partition_key = $2 AND document_id = $1"
                        " RETURNING id",
                        row["id"],
                        key,
                        timeout=deadline.left(),
                    )
                    if chunks:
                        await connection.copy_records_to_table(
                            "chunks",
                            columns=CHUNK_COLUMNS,
                            records=[
                                (
                                    key,
                                    chunk.id,
                                    row["id"],
                                    document.collection_id,
                                    chunk.chunk_index,
                                    chunk.text,
                                    chunk.start_offset,
                                    chunk.end_offset,
                                    chunk.token_count,
                                    chunk.page,
                                    chunk.heading,
                                )
                                for chunk in chunks
                            ],
                            timeout=deadline.left(),
                        )
            except asyncpg.ForeignKeyViolationError:
                return None
            except asyncpg.UniqueViolationError as exc:
                # A chunk id already belongs to another document.
                raise already_exists("semantik.io/Chunk", exc.detail or "chunk id") from exc
        new_ids = {chunk.id for chunk in chunks}
        replaced = [r["id"] for r in old_ids if r["id"] not in new_ids]
        return row, replaced

    async def delete_documents(
        self, collection_id: str, source_paths: Sequence[str], timeout_s: float
    ) -> tuple[int, list[uuid.UUID]]:
        """Removes the documents at these paths and their chunks, in one
        transaction: (documents removed, their chunk ids)."""
        key = partition_key(collection_id)
        async with (
            self._connection(timeout_s) as (connection, deadline),
            connection.transaction(),
        ):
            documents = await connection.fetch(
                "DELETE FROM documents WHERE collection_id = $1"
                " AND source_path = ANY($2::text[]) RETURNING id",
                collection_id,
                list(source_paths),
                timeout=deadline.left(),
            )
            if not documents:
                return 0, []
            chunks = await connection.fetch(
                "DELETE FROM chunks WHERE partition_key = $3 AND collection_id = $1"
                " AND document_id = ANY($2::uuid[]) RETURNING id",
                collection_id,
                [row["id"] for row in documents],
                key,
                timeout=deadline.left(),
            )
        return len(documents), [row["id"] for row in chunks]

    async def update_document_file(
        self,
        collection_id: str,
        source_path: str,
        new_source_path: str,
        modify_time: datetime | None,
        timeout_s: float,
    ) -> Row | None:
        """A moved or touched file: the document's new path and modify time,
        its chunks unchanged. None when absent; AlreadyExists-style error
        (ServiceError) when the new path is taken."""
        async with self._connection(timeout_s) as (connection, deadline):
            try:
                row: Row | None = await connection.fetchrow(
                    "UPDATE documents SET source_path = $3,"
                    " modify_time = COALESCE($4, modify_time)"
                    " WHERE collection_id = $1 AND source_path = $2 RETURNING *",
                    collection_id,
                    source_path,
                    new_source_path,
                    modify_time,
                    timeout=deadline.left(),
                )
            except asyncpg.UniqueViolationError as exc:
                raise already_exists("semantik.io/Document", new_source_path) from exc
            return row

    async def get_document(
        self, collection_id: str, document_id: uuid.UUID, timeout_s: float
    ) -> Row | None:
        async with self._connection(timeout_s) as (connection, deadline):
            row: Row | None = await connection.fetchrow(
                "SELECT * FROM documents WHERE id = $1 AND collection_id = $2",
                document_id,
                collection_id,
                timeout=deadline.left(),
            )
            return row

    async def list_documents(
        self,
        collection_id: str,
        after_path: str | None,
        limit: int,
        timeout_s: float,
        filters: DocumentFilters | None = None,
    ) -> list[Row] | None:
        """A page of documents by source path; None when the collection is absent."""
        filters = filters or DocumentFilters()
        async with self._connection(timeout_s) as (connection, deadline):
            # Unset filters are NULL and match everything, so one prepared
            # statement serves every combination. starts_with() takes the
            # prefix literally (no LIKE wildcards to escape).
            rows: list[Row] = await connection.fetch(
                "SELECT * FROM documents WHERE collection_id = $1"
                " AND ($2::text IS NULL OR source_path > $2)"
                " AND ($4::text IS NULL OR starts_with(source_path, $4))"
                " AND ($5::text IS NULL OR mime_type = $5)"
                " AND ($6::timestamptz IS NULL OR modify_time >= $6)"
                " AND ($7::timestamptz IS NULL OR modify_time < $7)"
                " ORDER BY source_path LIMIT $3",
                collection_id,
                after_path,
                limit,
                filters.path_prefix,
                filters.mime_type,
                filters.modified_after,
                filters.modified_before,
                timeout=deadline.left(),
            )
            if not rows:
                # Only an empty page can hide an absent collection.
                exists = await connection.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM collections WHERE id = $1)",
                    collection_id,
                    timeout=deadline.left(),
                )
                if not exists:
                    return None
            return rows

    async def hydrate_chunks(
        self, collection_id: str, chunk_ids: Sequence[uuid.UUID], timeout_s: float
    ) -> dict[uuid.UUID, Row]:
        """Chunks of the collection by id, with their document's source path."""
        async with self._connection(timeout_s) as (connection, deadline):
            rows = await connection.fetch(
                HYDRATE_SQL,
                list(set(chunk_ids)),
                collection_id,
                partition_key(collection_id),
                timeout=deadline.left(),
            )
        return {row["id"]: row for row in rows}

    # Operations ----------------------------------------------------------------

    async def create_operation(
        self,
        kind: int,
        collection_id: str,
        source_path: str,
        state: int,
        timeout_s: float,
        *,
        retry_of: uuid.UUID | None = None,
        scope: ImportScope = ImportScope(),
    ) -> Row | None:
        """The new operation; None when the collection is absent."""
        async with self._connection(timeout_s) as (connection, deadline):
            row: Row | None = await connection.fetchrow(
                """
                INSERT INTO operations (id, kind, collection_id, source_path, state, retry_of,
                                        include_globs, exclude_globs, max_file_bytes, source_id)
                SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                WHERE EXISTS (SELECT 1 FROM collections WHERE id = $3)
                RETURNING *
                """,
                uuid.uuid4(),
                kind,
                collection_id,
                source_path,
                state,
                retry_of,
                list(scope.include_globs),
                list(scope.exclude_globs),
                scope.max_file_bytes,
                scope.source_id,
                timeout=deadline.left(),
            )
            return row

    async def cancel_operation(self, operation_id: uuid.UUID, timeout_s: float) -> Row | None:
        """A PENDING operation becomes CANCELLED, a RUNNING one is marked
        `cancel_requested`; None when absent. Raises OperationIsDone."""
        async with (
            self._connection(timeout_s) as (connection, deadline),
            connection.transaction(),
        ):
            state = await connection.fetchval(
                "SELECT state FROM operations WHERE id = $1 FOR UPDATE",
                operation_id,
                timeout=deadline.left(),
            )
            if state is None:
                return None
            if state in FINAL_OPERATION_STATES:
                raise OperationIsDone(state)
            row: Row = await connection.fetchrow(
                """
                UPDATE operations SET
                    cancel_requested = true,
                    state = CASE WHEN state = $2 THEN $3 ELSE state END,
                    end_time = CASE WHEN state = $2 THEN now() END,
                    eta_seconds = CASE WHEN state = $2 THEN NULL ELSE eta_seconds END,
                    update_time = now()
                WHERE id = $1
                RETURNING *
                """,
                operation_id,
                operation_pb2.OPERATION_STATE_PENDING,
                operation_pb2.OPERATION_STATE_CANCELLED,
                timeout=deadline.left(),
            )
            return row

    async def get_operation(self, operation_id: uuid.UUID, timeout_s: float) -> Row | None:
        async with self._connection(timeout_s) as (connection, deadline):
            row: Row | None = await connection.fetchrow(
                "SELECT * FROM operations WHERE id = $1", operation_id, timeout=deadline.left()
            )
            return row

    async def list_operations(
        self,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        timeout_s: float,
        only_collection_ids: Sequence[str] | None = None,
    ) -> list[Row]:
        """A page, newest first; with `only_collection_ids`, of those
        collections' operations only (in SQL, so pages stay full)."""
        after_time, after_id = after if after is not None else (None, None)
        async with self._connection(timeout_s) as (connection, deadline):
            rows: list[Row] = await connection.fetch(
                "SELECT * FROM operations"
                " WHERE ($1::timestamptz IS NULL OR (create_time, id) < ($1, $2::uuid))"
                " AND ($4::text[] IS NULL OR collection_id = ANY($4))"
                " ORDER BY create_time DESC, id DESC LIMIT $3",
                after_time,
                after_id,
                limit,
                None if only_collection_ids is None else list(only_collection_ids),
                timeout=deadline.left(),
            )
            return rows

    async def update_operation(
        self, operation_id: uuid.UUID, update: OperationUpdate, timeout_s: float
    ) -> Row | None:
        """The operation after the update; None when absent.

        Raises OperationIsDone when a finished operation would change state;
        re-sending the same final state (a retried call) is accepted.
        """
        progress = update.progress
        counters = (
            (None,) * 9
            if progress is None
            else (
                progress.documents_total,
                progress.documents_done,
                progress.documents_failed,
                progress.chunks_done,
                progress.bytes_done,
                progress.documents_unchanged,
                progress.documents_removed,
                progress.bytes_total,
                progress.chunks_total,
            )
        )
        # The estimate goes with every progress report (NULL: none yet), and
        # with the final state.
        eta_seconds = None if progress is None else progress.eta_seconds
        final = update.state in FINAL_OPERATION_STATES
        async with (
            self._connection(timeout_s) as (connection, deadline),
            connection.transaction(),
        ):
            state = await connection.fetchval(
                "SELECT state FROM operations WHERE id = $1 FOR UPDATE",
                operation_id,
                timeout=deadline.left(),
            )
            if state is None:
                return None
            if (
                state in FINAL_OPERATION_STATES
                and update.state is not None
                and update.state != state
            ):
                raise OperationIsDone(state)
            row: Row = await connection.fetchrow(
                """
                UPDATE operations SET
                    state = COALESCE($2, state),
                    documents_total = COALESCE($3, documents_total),
                    documents_done = COALESCE($4, documents_done),
                    documents_failed = COALESCE($5, documents_failed),
                    chunks_done = COALESCE($6, chunks_done),
                    bytes_done = COALESCE($7, bytes_done),
                    documents_unchanged = COALESCE($8, documents_unchanged),
                    documents_removed = COALESCE($9, documents_removed),
                    bytes_total = COALESCE($10, bytes_total),
                    chunks_total = COALESCE($11, chunks_total),
                    document_errors = document_errors || $12::jsonb,
                    dead_letters = dead_letters || $13::jsonb,
                    error_message = CASE WHEN $14 = '' THEN error_message ELSE $14 END,
                    eta_seconds = CASE WHEN $16 THEN NULL
                                       WHEN $3::bigint IS NULL THEN eta_seconds
                                       ELSE $15 END,
                    update_time = now(),
                    end_time = CASE WHEN COALESCE($2, state) = ANY($17::smallint[])
                                    THEN COALESCE(end_time, now()) END
                WHERE id = $1
                RETURNING *
                """,
                operation_id,
                update.state,
                *counters,
                update.document_errors,
                update.dead_letters,
                update.error_message,
                eta_seconds,
                final,
                sorted(FINAL_OPERATION_STATES),
                timeout=deadline.left(),
            )
            return row

    # Users -----------------------------------------------------------------------

    async def create_user(
        self, new: NewUser, only_if_no_users: bool, timeout_s: float
    ) -> Row | None:
        """The stored user, or None when the id is taken.

        With `only_if_no_users` (the bootstrap admin) raises UsersExist when
        any user exists. The table lock (SHARE ROW EXCLUSIVE conflicts with
        itself and with every insert) makes check and insert one step: of two
        racing bootstraps the second waits, then sees the first's user.
        """
        async with (
            self._connection(timeout_s) as (connection, deadline),
            connection.transaction(),
        ):
            if only_if_no_users:
                await connection.execute(
                    "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE", timeout=deadline.left()
                )
            row: Row | None = await connection.fetchrow(
                """
                INSERT INTO users (id, display_name, role, password_hash)
                SELECT $1, $2, $3, $4
                WHERE NOT $5 OR NOT EXISTS (SELECT 1 FROM users)
                ON CONFLICT (id) DO NOTHING
                RETURNING *
                """,
                new.id,
                new.display_name,
                new.role,
                new.password_hash,
                only_if_no_users,
                timeout=deadline.left(),
            )
            if row is None and only_if_no_users:
                raise UsersExist()
            return row

    async def get_user(self, user_id: str, timeout_s: float) -> Row | None:
        async with self._connection(timeout_s) as (connection, deadline):
            row: Row | None = await connection.fetchrow(
                "SELECT * FROM users WHERE id = $1", user_id, timeout=deadline.left()
            )
            return row

    async def list_users(self, after_id: str | None, limit: int, timeout_s: float) -> list[Row]:
        async with self._connection(timeout_s) as (connection, deadline):
            rows: list[Row] = await connection.fetch(
                "SELECT * FROM users WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2",
                after_id,
                limit,
                timeout=deadline.left(),
            )
            return rows

    async def delete_user(self, user_id: str, timeout_s: float) -> bool:
        """Deletes the user; grants, keys and refresh tokens go by cascade."""
        async with self._connection(timeout_s) as (connection, deadline):
            deleted = await connection.fetchval(
                "DELETE FROM users WHERE id = $1 RETURNING id", user_id, timeout=deadline.left()
            )
            return deleted is not None

    async def set_password(self, user_id: str, password_hash: str, timeout_s: float) -> int | None:
        """The new token version; None when the user is absent.

        One statement, so one transaction: the hash, the version bump and the
        revocation of every refresh token of the user.
        """
        async with self._connection(timeout_s) as (connection, deadline):
            version: int | None = await connection.fetchval(
                """
                WITH u AS (
                    UPDATE users SET password_hash = $2, token_version = token_version + 1,
                        update_time = now()
                    WHERE id = $1
                    RETURNING id, token_version
                ), revoked AS (
                    UPDATE refresh_tokens SET revoke_time = now()
                    WHERE user_id IN (SELECT id FROM u) AND revoke_time IS NULL
                )
                SELECT token_version FROM u
                """,
                user_id,
                password_hash,
                timeout=deadline.left(),
            )
            return version

    # Refresh tokens ------------------------------------------------------------------

    async def create_refresh_token(
        self,
        token_hash: bytes,
        family_id: uuid.UUID,
        user_id: str,
        expire_time: datetime,
        timeout_s: float,
    ) -> None:
        """Stores a token; Missing("user") when the user is absent."""
        async with self._connection(timeout_s) as (connection, deadline):
            try:
                await connection.execute(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expire_time)"
                    " VALUES ($1, $2, $3, $4)",
                    token_hash,
                    family_id,
                    user_id,
                    expire_time,
                    timeout=deadline.left(),
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise Missing("user", user_id) from exc
            except asyncpg.UniqueViolationError as exc:
                raise RefreshTokenExists() from exc

    async def rotate_refresh_token(
        self, token_hash: bytes, new_token_hash: bytes, new_expire_time: datetime, timeout_s: float
    ) -> Rotation:
        """Spends a token and stores its successor in the same family.

        The row is locked, so of two calls presenting one token the second
        waits and then finds it spent (REUSED, revoking the family, the
        first's successor included). A family counts as revoked when any of
        its tokens is: a successor stored while the family was being revoked
        is then refused too.
        """
        async with (
            self._connection(timeout_s) as (connection, deadline),
            connection.transaction(),
        ):
            token = await connection.fetchrow(
                """
                SELECT t.family_id, t.user_id, t.used_time IS NOT NULL AS used,
                       t.expire_time <= now() AS expired,
                       EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family_id = t.family_id
                               AND f.revoke_time IS NOT NULL) AS revoked
                FROM refresh_tokens t WHERE t.token_hash = $1
                FOR UPDATE OF t
                """,
                token_hash,
                timeout=deadline.left(),
            )
            if token is None:
                return Rotation(RotateOutcome.INVALID, None)
            user_id: str = token["user_id"]
            # A spent token presented again is a reuse even when its family
            # is revoked already (several racing replays all answer REUSED).
            if token["used"]:
                await connection.execute(
                    "UPDATE refresh_tokens SET revoke_time = now()"
                    " WHERE family_id = $1 AND revoke_time IS NULL",
                    token["family_id"],
                    timeout=deadline.left(),
                )
                return Rotation(RotateOutcome.REUSED, user_id)
            if token["revoked"]:
                return Rotation(RotateOutcome.INVALID, user_id)
            if token["expired"]:
                return Rotation(RotateOutcome.EXPIRED, user_id)
            try:
                await connection.execute(
                    """
                    WITH spent AS (
                        UPDATE refresh_tokens SET used_time = now() WHERE token_hash = $1
                    )
                    INSERT INTO refresh_tokens (token_hash, family_id, user_id, expire_time)
                    VALUES ($2, $3, $4, $5)
                    """,
                    token_hash,
                    new_token_hash,
                    token["family_id"],
                    user_id,
                    new_expire_time,
                    timeout=deadline.left(),
                )
            except asyncpg.UniqueViolationError as exc:
                raise RefreshTokenExists() from exc
            return Rotation(RotateOutcome.ROTATED, user_id, token["family_id"])

    async def revoke_refresh_token(self, token_hash: bytes, timeout_s: float) -> str | None:
        """Revokes the token's whole family; its user, or None when unknown."""
        async with self._connection(timeout_s) as (connection, deadline):
            user_id: str | None = await connection.fetchval(
                """
                WITH t AS (
                    SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1
                ), revoked AS (
                    UPDATE refresh_tokens SET revoke_time = now()
                    WHERE family_id IN (SELECT family_id FROM t) AND revoke_time IS NULL
                )
                SELECT user_id FROM t
                """,
                token_hash,
                timeout=deadline.left(),
            )
            return user_id

    # Grants ------------------------------------------------------------------------

    async def set_grant(self, collection_id: str, user_id: str, role: int, timeout_s: float) -> Row:
        """Inserts or replaces the grant; Missing when the collection or user is absent."""
        return await self._set_grant(COLLECTION_GRANTS, collection_id, user_id, role, timeout_s)

    async def list_grants(
        self, collection_id: str, after_user: str | None, limit: int, timeout_s: float
    ) -> list[Row] | None:
        """A page of the collection's grants by user id; None when it is absent."""
        return await self._list_grants(
            COLLECTION_GRANTS, collection_id, after_user, limit, timeout_s
        )

    async def delete_grant(self, collection_id: str, user_id: str, timeout_s: float) -> bool:
        return await self._delete_grant(COLLECTION_GRANTS, collection_id, user_id, timeout_s)

    async def _set_grant(
        self, grants: GrantTable, parent_id: str, user_id: str, role: int, timeout_s: float
    ) -> Row:
        async with self._connection(timeout_s) as (connection, deadline):
            try:
                row: Row = await connection.fetchrow(
                    grants.upsert_sql, parent_id, user_id, role, timeout=deadline.left()
                )
            except asyncpg.ForeignKeyViolationError as exc:
                # Name the parent first when both are absent, whichever
                # constraint PostgreSQL checked first.
                exists = await connection.fetchval(
                    grants.parent_exists_sql, parent_id, timeout=deadline.left()
                )
                if not exists:
                    raise Missing(grants.parent_kind, parent_id) from exc
                raise Missing("user", user_id) from exc
            return row

    async def _list_grants(
        self,
        grants: GrantTable,
        parent_id: str,
        after_user: str | None,
        limit: int,
        timeout_s: float,
    ) -> list[Row] | None:
        return await self._page_under(
            grants.page_sql,
            grants.parent_exists_sql,
            parent_id,
            after=after_user,
            limit=limit,
            timeout_s=timeout_s,
        )

    async def _page_under(
        self,
        page_sql: str,
        parent_exists_sql: str,
        parent_id: str,
        *,
        after: str | None,
        limit: int,
        timeout_s: float,
    ) -> list[Row] | None:
        """A page of a parent's rows ($1 parent, $2 last key or NULL, $3 limit);
        None when the parent is absent (checked only for an empty page)."""
        async with self._connection(timeout_s) as (connection, deadline):
            rows: list[Row] = await connection.fetch(
                page_sql, parent_id, after, limit, timeout=deadline.left()
            )
            if not rows and not await connection.fetchval(
                parent_exists_sql, parent_id, timeout=deadline.left()
            ):
                return None
            return rows

    async def _delete_grant(
        self, grants: GrantTable, parent_id: str, user_id: str, timeout_s: float
    ) -> bool:
        async with self._connection(timeout_s) as (connection, deadline):
            deleted = await connection.fetchval(
                grants.delete_sql, parent_id, user_id, timeout=deadline.left()
            )
            return deleted is not None

    # Sources -------------------------------------------------------------------------

    async def create_source(self, new: NewSource, timeout_s: float) -> Row:
        """The stored source. SourceExists when its id or path is taken,
        Missing("user") when the owner is absent, PathTooLong when the path
        does not fit the unique index."""
        async with self._connection(timeout_s) as (connection, deadline):
            try:
                row: Row = await connection.fetchrow(
                    "INSERT INTO sources (id, path, display_name, owner_user_id)"
                    " VALUES ($1, $2, $3, $4) RETURNING *",
                    new.id,
                    new.path,
                    new.display_name,
                    new.owner_user_id,
                    timeout=deadline.left(),
                )
            except asyncpg.UniqueViolationError as exc:
                taken = "path" if exc.constraint_name == "sources_path_key" else "id"
                raise SourceExists(taken) from exc
            except asyncpg.ForeignKeyViolationError as exc:
                raise Missing("user", new.owner_user_id or "") from exc
            except asyncpg.ProgramLimitExceededError as exc:
                raise PathTooLong() from exc
            return row

    async def get_source(self, source_id: str, user_id: str | None, timeout_s: float) -> Row | None:
        """The source with `user_id`'s role on it as `caller_role`."""
        async with self._connection(timeout_s) as (connection, deadline):
            row: Row | None = await connection.fetchrow(
                f"SELECT {SOURCE_COLUMNS} FROM sources s WHERE s.id = $2",
                user_id,
                source_id,
                timeout=deadline.left(),
            )
            return row

    async def find_source_for_path(
        self, path: str, user_id: str | None, timeout_s: float
    ) -> Row | None:
        """The deepest source whose folder is `path` or one of its ancestors,
        with `caller_role` as in get_source. starts_with() takes the folder
        literally (no LIKE wildcards), and the `/` after it keeps `/data/a`
        from holding `/data/ab`."""
        async with self._connection(timeout_s) as (connection, deadline):
            row: Row | None = await connection.fetchrow(
                f"SELECT {SOURCE_COLUMNS} FROM sources s"
                " WHERE s.path = $2 OR starts_with($2, s.path || '/')"
                " ORDER BY length(s.path) DESC LIMIT 1",
                user_id,
                path,
                timeout=deadline.left(),
            )
            return row

    async def list_sources(
        self, after_id: str | None, limit: int, timeout_s: float, user_id: str | None = None
    ) -> list[Row]:
        """A page by id; with `user_id`, of the sources that user owns or was
        granted only (in SQL, so pages stay full), with their role."""
        async with self._connection(timeout_s) as (connection, deadline):
            rows: list[Row] = await connection.fetch(
                f"SELECT {SOURCE_COLUMNS} FROM sources s"
                " WHERE ($2::text IS NULL OR s.id > $2)"
                " AND ($1::text IS NULL OR s.owner_user_id = $1 OR EXISTS ("
                "     SELECT 1 FROM source_grants g WHERE g.source_id = s.id AND g.user_id = $1))"
                " ORDER BY s.id LIMIT $3",
                user_id,
                after_id,
                limit,
                timeout=deadline.left(),
            )
            return rows

    async def delete_source(self, source_id: str, timeout_s: float) -> bool:
        """Deletes the source; its grants go by cascade, operations keep its id."""
        async with self._connection(timeout_s) as (connection, deadline):
            deleted = await connection.fetchval(
                "DELETE FROM sources WHERE id = $1 RETURNING id", source_id, timeout=deadline.left()
            )
            return deleted is not None

    async def set_source_grant(
        self, source_id: str, user_id: str, role: int, timeout_s: float
    ) -> Row:
        """Inserts or replaces the grant; Missing when the source or user is absent."""
        return await self._set_grant(SOURCE_GRANTS, source_id, user_id, role, timeout_s)

    async def list_source_grants(
        self, source_id: str, after_user: str | None, limit: int, timeout_s: float
    ) -> list[Row] | None:
        """A page of the source's grants by user id; None when it is absent."""
        return await self._list_grants(SOURCE_GRANTS, source_id, after_user, limit, timeout_s)

    async def delete_source_grant(self, source_id: str, user_id: str, timeout_s: float) -> bool:
        return await self._delete_grant(SOURCE_GRANTS, source_id, user_id, timeout_s)

    # API keys ------------------------------------------------------------------------

    async def create_api_key(self, new: NewApiKey, timeout_s: float) -> Row | None:
        """The stored key, or None when the id is taken; Missing("user") when
        the owner is absent."""
        async with self._connection(timeout_s) as (connection, deadline):
            try:
                row: Row | None = await connection.fetchrow(
                    """
                    INSERT INTO api_keys (id, user_id, display_name, secret_hash,
                        collections, verbs, expire_time)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (id) DO NOTHING
                    RETURNING *
                    """,
                    new.id,
                    new.user_id,
                    new.display_name,
                    new.secret_hash,
                    new.collections,
                    new.verbs,
                    new.expire_time,
                    timeout=deadline.left(),
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise Missing("user", new.user_id) from exc
            return row

    async def list_api_keys(
        self, user_id: str, after_id: str | None, limit: int, timeout_s: float
    ) -> list[Row] | None:
        """A page of the user's unrevoked keys by id; None when the user is absent."""
        return await self._page_under(
            "SELECT * FROM api_keys WHERE user_id = $1 AND revoke_time IS NULL"
            " AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)",
            user_id,
            after=after_id,
            limit=limit,
            timeout_s=timeout_s,
        )

    async def delete_api_key(self, user_id: str, key_id: str, timeout_s: float) -> bool:
        """Revokes the user's key; False when absent, revoked or another user's."""
        async with self._connection(timeout_s) as (connection, deadline):
            revoked = await connection.fetchval(
                "UPDATE api_keys SET revoke_time = now()"
                " WHERE id = $1 AND user_id = $2 AND revoke_time IS NULL RETURNING id",
                key_id,
                user_id,
                timeout=deadline.left(),
            )
            return revoked is not None

    # Principals ------------------------------------------------------------------------

    async def resolve_user(
        self, user_id: str, session_id: uuid.UUID | None, timeout_s: float
    ) -> Principal | None:
        """The user, their grants and whether `session_id` is revoked, one
        statement; None when the user is absent."""
        async with self._connection(timeout_s) as (connection, deadline):
            row = await connection.fetchrow(
                RESOLVE_USER_SQL, user_id, session_id, timeout=deadline.left()
            )
        if row is None:
            return None
        return Principal(
            user=row,
            grants=dict(row["grants"] or {}),
            api_key=None,
            session_revoked=bool(row["session_revoked"]),
        )

    async def resolve_api_key(self, key_id: str, timeout_s: float) -> Principal | None:
        """The unrevoked key, its owner and their grants, one statement (which
        also records the key's use); None when absent or revoked. Expiry is
        not checked here."""
        async with self._connection(timeout_s) as (connection, deadline):
            row = await connection.fetchrow(RESOLVE_API_KEY_SQL, key_id, timeout=deadline.left())
        if row is None:
            return None
        key = {name: row[f"key_{name}"] for name in API_KEY_FIELDS}
        return Principal(user=row, grants=dict(row["grants"] or {}), api_key=key)
