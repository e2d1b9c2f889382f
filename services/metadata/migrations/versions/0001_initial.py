"""Initial schema: collections, documents, chunks, operations.

Revision ID: 0001
Revises:
Create Date: 2025-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

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


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Text(), primary_key=True),
        _text("display_name"),
        _text("description"),
        _text("embedding_model"),
        _count("embedding_dimensions", sa.Integer),
        sa.Column("chunk_tokens", sa.Integer(), nullable=False),
        sa.Column("overlap_tokens", sa.Integer(), nullable=False),
        _timestamp("create_time"),
        _timestamp("update_time"),
    )
    op.create_table(
        "documents",
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
        # Also the index that ListDocuments pages along (by source path).
        sa.UniqueConstraint("collection_id", "source_path", name="documents_collection_path_key"),
    )
    op.create_table(
        "chunks",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column(
            "document_id",
            postgresql.UUID(),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # Copied from the document so HydrateChunks filters without a join.
        sa.Column("collection_id", sa.Text(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start_offset", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.Integer(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
    )
    # Replacing a document deletes its chunks, and deleting a collection
    # cascades through documents to chunks: both look chunks up by document.
    op.create_index("chunks_document_id_idx", "chunks", ["document_id"])
    op.create_table(
        "operations",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        # No foreign key: an operation outlives its collection as history.
        sa.Column("collection_id", sa.Text(), nullable=False),
        _text("source_path"),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        _count("documents_total"),
        _count("documents_done"),
        _count("documents_failed"),
        _count("chunks_done"),
        _count("bytes_done"),
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
    )
    # ListOperations pages newest first.
    op.create_index(
        "operations_create_time_id_idx",
        "operations",
        [sa.text("create_time DESC"), sa.text("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("operations_create_time_id_idx", table_name="operations")
    op.drop_table("operations")
    op.drop_index("chunks_document_id_idx", table_name="chunks")
    op.drop_table("chunks")
    op.drop_table("documents")
    op.drop_table("collections")
