"""Chunks in 100 LIST partitions, partition monitoring views, users/roles/API keys.

- `chunk_partition_key(text)`: the SQL half of the partition key (the Python
  half is `services.metadata.partitions.partition_key`; a test keeps them equal).
- `chunks` becomes a table LIST-partitioned on a stored `partition_key`
  (`chunks_p00` … `chunks_p99`), with a CHECK that the stored key is
  `chunk_partition_key(collection_id)`. Existing rows are moved over. The
  primary key is (partition_key, id) (a partitioned table's unique keys must
  hold the partition key). `chunks.document_id` is no longer a foreign key:
  the per-row RI check slowed COPY; the store deletes a
  document's chunks itself, in the transaction that replaces or deletes it.
  A `page` column is added (0 = unknown).
- Views: `chunk_partition_rows` (one row per partition), `chunk_partition_skew`
  (one row), `chunk_partition_hot`, `chunk_partition_collections`.
- Tables `users`, `roles`, `user_roles`, `api_keys` (used by the security work).

Revision ID: 0002
Revises: 0001
Create Date: 2025-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

PARTITIONS = 100
NOW = sa.text("now()")

PARTITION_KEY_FUNCTION = f"""
CREATE FUNCTION chunk_partition_key(collection_id text) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (('x' || substr(md5(collection_id), 1, 8))::bit(32)::bigint % {PARTITIONS})::smallint
"""

# Rows and activity per partition, from the statistics collector (row counts
# are estimates kept by inserts, deletes, VACUUM and ANALYZE: cheap at any
# size, exact right after ANALYZE), plus the collections hashed to each.
PARTITION_ROWS_VIEW = """
CREATE VIEW chunk_partition_rows AS
WITH parts AS (
    SELECT c.oid, c.relname,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM '(\\d+)')::int AS partition_key
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'chunks'::regclass
), owners AS (
    SELECT chunk_partition_key(id)::int AS partition_key, count(*) AS collections
    FROM collections GROUP BY 1
), per_part AS (
    SELECT p.partition_key,
           p.relname::text AS partition_name,
           COALESCE(s.n_live_tup, 0) AS live_rows,
           COALESCE(s.n_dead_tup, 0) AS dead_rows,
           pg_total_relation_size(p.oid) AS total_bytes,
           COALESCE(s.seq_scan, 0) AS seq_scans,
           COALESCE(s.idx_scan, 0) AS idx_scans,
           COALESCE(s.n_tup_ins, 0) AS rows_inserted,
           COALESCE(s.n_tup_upd, 0) AS rows_updated,
           COALESCE(s.n_tup_del, 0) AS rows_deleted,
           COALESCE(s.seq_scan, 0) + COALESCE(s.idx_scan, 0) + COALESCE(s.n_tup_ins, 0)
               + COALESCE(s.n_tup_upd, 0) + COALESCE(s.n_tup_del, 0) AS activity,
           COALESCE(o.collections, 0) AS collections,
           GREATEST(s.last_analyze, s.last_autoanalyze) AS last_analyzed
    FROM parts p
    LEFT JOIN pg_stat_user_tables s ON s.relid = p.oid
    LEFT JOIN owners o ON o.partition_key = p.partition_key
)
SELECT per_part.*,
       COALESCE(live_rows::float8 / NULLIF(sum(live_rows) OVER (), 0), 0) AS row_share,
       COALESCE(activity::float8 / NULLIF(sum(activity) OVER (), 0), 0) AS activity_share
FROM per_part
"""

# One row: how evenly the rows spread. A perfectly even spread has
# max_to_mean = 1 and coefficient_of_variation = 0.
PARTITION_SKEW_VIEW = """
CREATE VIEW chunk_partition_skew AS
SELECT count(*) AS partitions,
       count(*) FILTER (WHERE live_rows > 0) AS nonempty_partitions,
       COALESCE(sum(live_rows), 0)::bigint AS total_rows,
       COALESCE(avg(live_rows), 0)::float8 AS mean_rows,
       COALESCE(max(live_rows), 0)::bigint AS max_rows,
       COALESCE(min(live_rows), 0)::bigint AS min_rows,
       COALESCE(stddev_pop(live_rows), 0)::float8 AS stddev_rows,
       COALESCE(max(live_rows) / NULLIF(avg(live_rows), 0), 0)::float8 AS max_to_mean,
       COALESCE(stddev_pop(live_rows) / NULLIF(avg(live_rows), 0), 0)::float8
           AS coefficient_of_variation,
       (SELECT partition_key FROM chunk_partition_rows
        ORDER BY live_rows DESC, partition_key LIMIT 1) AS largest_partition
FROM chunk_partition_rows
"""

# Hot: a partition doing at least 3x its fair share (1/partitions) of the
# work (scans and row changes since the statistics were last reset).
PARTITION_HOT_VIEW = """
CREATE VIEW chunk_partition_hot AS
SELECT r.*, r.activity_share * count(*) OVER () AS times_fair_share
FROM chunk_partition_rows r
WHERE r.activity > 0
  AND r.activity_share >= 3.0 / (SELECT count(*) FROM chunk_partition_rows)
"""

# Collections per partition with their size, from `documents` (no chunk scan).
PARTITION_COLLECTIONS_VIEW = """
CREATE VIEW chunk_partition_collections AS
SELECT chunk_partition_key(c.id)::int AS partition_key,
       c.id AS collection_id,
       COALESCE(sum(d.chunk_count), 0)::bigint AS chunk_rows,
       count(d.id) AS documents
FROM collections c
LEFT JOIN documents d ON d.collection_id = c.id
GROUP BY c.id
"""

VIEWS = (
    "chunk_partition_collections",
    "chunk_partition_hot",
    "chunk_partition_skew",
    "chunk_partition_rows",
)

CHUNK_COLUMNS = (
    "id, document_id, collection_id, chunk_index, text, start_offset, end_offset, token_count"
)


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.TIMESTAMP(timezone=True),
        nullable=nullable,
        server_default=None if nullable else NOW,
    )


def upgrade() -> None:
    op.execute(PARTITION_KEY_FUNCTION)

    op.execute("ALTER TABLE chunks RENAME TO chunks_0001")
    op.execute("ALTER TABLE chunks_0001 RENAME CONSTRAINT chunks_pkey TO chunks_0001_pkey")
    op.execute(
        "ALTER TABLE chunks_0001 RENAME CONSTRAINT chunks_document_id_fkey"
        " TO chunks_0001_document_id_fkey"
    )
    op.execute("ALTER INDEX chunks_document_id_idx RENAME TO chunks_0001_document_id_idx")
    op.execute(
        """
        CREATE TABLE chunks (
            partition_key smallint NOT NULL,
            collection_id text NOT NULL,
            id uuid NOT NULL,
            document_id uuid NOT NULL,
            chunk_index integer NOT NULL,
            text text NOT NULL,
            start_offset integer NOT NULL,
            end_offset integer NOT NULL,
            token_count integer NOT NULL,
            page integer NOT NULL DEFAULT 0,
            CONSTRAINT chunks_pkey PRIMARY KEY (partition_key, id),
            CONSTRAINT chunks_partition_key_check
                CHECK (partition_key = chunk_partition_key(collection_id))
        ) PARTITION BY LIST (partition_key)
        """
    )
    for key in range(PARTITIONS):
        op.execute(f"CREATE TABLE chunks_p{key:02d} PARTITION OF chunks FOR VALUES IN ({key})")
    # Replacing a document deletes its chunks by document id.
    op.execute("CREATE INDEX chunks_document_id_idx ON chunks (document_id)")
    op.execute(
        f"INSERT INTO chunks (partition_key, {CHUNK_COLUMNS})"
        f" SELECT chunk_partition_key(collection_id), {CHUNK_COLUMNS} FROM chunks_0001"
    )
    op.execute("DROP TABLE chunks_0001")

    op.execute(PARTITION_ROWS_VIEW)
    op.execute(PARTITION_SKEW_VIEW)
    op.execute(PARTITION_HOT_VIEW)
    op.execute(PARTITION_COLLECTIONS_VIEW)

    op.create_table(
        "users",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False, server_default=""),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        _timestamp("create_time"),
        _timestamp("update_time"),
        sa.UniqueConstraint("email", name="users_email_key"),
    )
    op.create_table(
        "roles",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        _timestamp("create_time"),
    )
    op.create_table(
        "user_roles",
        sa.Column(
            "user_id",
            postgresql.UUID(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "role_id",
            sa.Text(),
            sa.ForeignKey("roles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _timestamp("create_time"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False, server_default=""),
        # The key's public prefix (shown to users) and a hash of the secret;
        # the secret itself is never stored.
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        _timestamp("create_time"),
        _timestamp("expire_time", nullable=True),
        _timestamp("last_used_time", nullable=True),
        _timestamp("revoke_time", nullable=True),
        sa.UniqueConstraint("prefix", name="api_keys_prefix_key"),
    )
    op.create_index("api_keys_user_id_idx", "api_keys", ["user_id"])


def downgrade() -> None:
    op.drop_index("api_keys_user_id_idx", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("user_roles")
    op.drop_table("roles")
    op.drop_table("users")
    for view in VIEWS:
        op.execute(f"DROP VIEW {view}")

    op.execute("ALTER TABLE chunks RENAME TO chunks_0002")
    op.execute("ALTER TABLE chunks_0002 RENAME CONSTRAINT chunks_pkey TO chunks_0002_pkey")
    op.execute("ALTER INDEX chunks_document_id_idx RENAME TO chunks_0002_document_id_idx")
    # As 0001 made it. Chunk ids were unique across partitions then; a
    # clash aborts the downgrade rather than lose a row.
    op.execute(
        """
        CREATE TABLE chunks (
            id uuid NOT NULL CONSTRAINT chunks_pkey PRIMARY KEY,
            document_id uuid NOT NULL
                CONSTRAINT chunks_document_id_fkey REFERENCES documents (id) ON DELETE CASCADE,
            collection_id text NOT NULL,
            chunk_index integer NOT NULL,
            text text NOT NULL,
            start_offset integer NOT NULL,
            end_offset integer NOT NULL,
            token_count integer NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX chunks_document_id_idx ON chunks (document_id)")
    # Chunks whose document is gone (none, unless written outside the
    # service) would break the foreign key; they are garbage either way.
    op.execute(
        f"INSERT INTO chunks ({CHUNK_COLUMNS}) SELECT {CHUNK_COLUMNS} FROM chunks_0002 c"
        " WHERE EXISTS (SELECT 1 FROM documents d WHERE d.id = c.document_id)"
    )
    op.execute("DROP TABLE chunks_0002")
    op.execute("DROP FUNCTION chunk_partition_key(text)")
