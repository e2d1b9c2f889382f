"""The schema at head as SQLAlchemy table metadata.

Not used to query (the store speaks SQL through asyncpg); it is the
declarative statement of what the migrations build, and a test compares it
with a freshly migrated database through Alembic's autogenerate
(`compare_metadata`), so a migration that drifts from it fails CI.
Partitions (`chunks_p00`…), views and the partition-key function are checked
by their own tests, as autogenerate does not see them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()
NOW = sa.text("now()")


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.TIMESTAMP(timezone=True),
        nullable=nullable,
        server_default=None if nullable else NOW,
    )


def _text(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Text(), nullable=False, server_default="")


def _count(name: str, type_: type[sa.Integer] = sa.BigInteger) -> sa.Column[object]:
    return sa.Column(name, type_(), nullable=False, server_default="0")


collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    _text("display_name"),
    _text("description"),
    _text("embedding_model"),
    _count("embedding_dimensions", sa.Integer),
    sa.Column("chunk_tokens", sa.Integer(), nullable=False),
    sa.Column("overlap_tokens", sa.Integer(), nullable=False),
    # semantik.v1.ChunkingStrategy; 3 (FIXED_TOKENS) for collections made before 0004.
    sa.Column("chunking_strategy", sa.SmallInteger(), nullable=False, server_default="3"),
    _timestamp("create_time"),
    _timestamp("update_time"),
    sa.CheckConstraint(
        "chunking_strategy IN (1, 2, 3, 4)", name="collections_chunking_strategy_check"
    ),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", postgresql.UUID(), primary_key=True),
    sa.Column(
        "collection_id",
        sa.Text(),
        sa.ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("source_path", sa.Text(), nullable=False),
    _text("content_hash"),
    _count("size_bytes"),
    _text("mime_type"),
    sa.Column("state", sa.SmallInteger(), nullable=False),
    _text("error"),
    _count("chunk_count", sa.Integer),
    _timestamp("modify_time", nullable=True),
    _timestamp("create_time"),
    sa.UniqueConstraint("collection_id", "source_path", name="documents_collection_path_key"),
)

chunks = sa.Table(
    "chunks",
    metadata,
    # services.metadata.partitions.partition_key(collection_id); LIST partitions.
    sa.Column("partition_key", sa.SmallInteger(), primary_key=True),
    sa.Column("collection_id", sa.Text(), nullable=False),
    sa.Column("id", postgresql.UUID(), primary_key=True),
    sa.Column("document_id", postgresql.UUID(), nullable=False),
    sa.Column("chunk_index", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("start_offset", sa.Integer(), nullable=False),
    sa.Column("end_offset", sa.Integer(), nullable=False),
    sa.Column("token_count", sa.Integer(), nullable=False),
    sa.Column("page", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("heading", sa.Text(), nullable=False, server_default=""),
    sa.Index("chunks_document_id_idx", "document_id"),
    postgresql_partition_by="LIST (partition_key)",
)

operations = sa.Table(
    "operations",
    metadata,
    sa.Column("id", postgresql.UUID(), primary_key=True),
    sa.Column("kind", sa.SmallInteger(), nullable=False),
    sa.Column("collection_id", sa.Text(), nullable=False),
    _text("source_path"),
    sa.Column("state", sa.SmallInteger(), nullable=False),
    _count("documents_total"),
    _count("documents_done"),
    _count("documents_failed"),
    _count("chunks_done"),
    _count("bytes_done"),
    _count("documents_unchanged"),
    _count("documents_removed"),
    _text("error_message"),
    sa.Column(
        "document_errors",
        postgresql.JSONB(),
        nullable=False,
        server_default=sa.text("'[]'::jsonb"),
    ),
    _timestamp("create_time"),
    _timestamp("update_time"),
    _timestamp("end_time", nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("retry_of", postgresql.UUID(), nullable=True),
    sa.Column(
        "dead_letters",
        postgresql.JSONB(),
        nullable=False,
        server_default=sa.text("'[]'::jsonb"),
    ),
    _count("bytes_total"),
    _count("chunks_total"),
    sa.Column("eta_seconds", sa.Float(), nullable=True),
    sa.Column(
        "include_globs",
        postgresql.ARRAY(sa.Text()),
        nullable=False,
        server_default=sa.text("'{}'::text[]"),
    ),
    sa.Column(
        "exclude_globs",
        postgresql.ARRAY(sa.Text()),
        nullable=False,
        server_default=sa.text("'{}'::text[]"),
    ),
    _count("max_file_bytes"),
    # The source an import read; no foreign key (operations are history).
    sa.Column("source_id", sa.Text(), nullable=True),
    sa.Index("operations_create_time_id_idx", sa.text("create_time DESC"), sa.text("id DESC")),
)

# semantik.v1.Role / CollectionRole: 1, 2, 3; ApiKeyVerb READ, WRITE, MANAGE.
ROLES = "1, 2, 3"


def _user_id(primary_key: bool = False) -> sa.Column[object]:
    return sa.Column(
        "user_id",
        sa.Text(),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


users = sa.Table(
    "users",
    metadata,
    # The login name: `users/{id}`.
    sa.Column("id", sa.Text(), primary_key=True),
    _text("display_name"),
    sa.Column("role", sa.SmallInteger(), nullable=False),
    # PHC-encoded argon2id.
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("token_version", sa.BigInteger(), nullable=False, server_default="1"),
    _timestamp("create_time"),
    _timestamp("update_time"),
    sa.CheckConstraint(f"role IN ({ROLES})", name="users_role_check"),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    # SHA-256 of the token; the token itself is never stored.
    sa.Column("token_hash", sa.LargeBinary(), primary_key=True),
    sa.Column("family_id", postgresql.UUID(), nullable=False),
    _user_id(),
    sa.Column("expire_time", sa.TIMESTAMP(timezone=True), nullable=False),
    _timestamp("used_time", nullable=True),
    _timestamp("revoke_time", nullable=True),
    _timestamp("create_time"),
    sa.Index("refresh_tokens_family_id_idx", "family_id"),
    sa.Index("refresh_tokens_user_id_idx", "user_id"),
)

collection_grants = sa.Table(
    "collection_grants",
    metadata,
    sa.Column(
        "collection_id",
        sa.Text(),
        sa.ForeignKey("collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    _user_id(primary_key=True),
    sa.Column("role", sa.SmallInteger(), nullable=False),
    _timestamp("update_time"),
    sa.CheckConstraint(f"role IN ({ROLES})", name="collection_grants_role_check"),
    sa.Index("collection_grants_user_id_idx", "user_id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    # The key's public prefix: `apiKeys/{id}`.
    sa.Column("id", sa.Text(), primary_key=True),
    _user_id(),
    _text("display_name"),
    # SHA-256 of the whole secret.
    sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
    # Collection ids (not names) and semantik.v1.ApiKeyVerb values.
    sa.Column("collections", postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column("verbs", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
    _timestamp("expire_time", nullable=True),
    _timestamp("create_time"),
    _timestamp("last_used_time", nullable=True),
    _timestamp("revoke_time", nullable=True),
    sa.CheckConstraint("octet_length(secret_hash) = 32", name="api_keys_secret_hash_check"),
    sa.CheckConstraint(
        f"cardinality(collections) > 0 AND cardinality(verbs) > 0"
        f" AND verbs <@ ARRAY[{ROLES}]::smallint[]",
        name="api_keys_scope_check",
    ),
    sa.Index("api_keys_user_id_idx", "user_id"),
)

# semantik.v1.SourceRole OWNER, READER.
SOURCE_ROLES = "1, 2"

sources = sa.Table(
    "sources",
    metadata,
    # `sources/{id}`, spelled as a collection id.
    sa.Column("id", sa.Text(), primary_key=True),
    # Absolute path of the folder on the server.
    sa.Column("path", sa.Text(), nullable=False),
    _text("display_name"),
    # NULL once its owner is deleted (admins manage it).
    sa.Column(
        "owner_user_id",
        sa.Text(),
        sa.ForeignKey("users.id", ondelete="SET NULL"),
        nullable=True,
    ),
    _timestamp("create_time"),
    sa.UniqueConstraint("path", name="sources_path_key"),
    sa.Index("sources_owner_user_id_idx", "owner_user_id"),
)

source_grants = sa.Table(
    "source_grants",
    metadata,
    sa.Column(
        "source_id",
        sa.Text(),
        sa.ForeignKey("sources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    _user_id(primary_key=True),
    sa.Column("role", sa.SmallInteger(), nullable=False),
    _timestamp("update_time"),
    sa.CheckConstraint(f"role IN ({SOURCE_ROLES})", name="source_grants_role_check"),
    sa.Index("source_grants_user_id_idx", "user_id"),
)
