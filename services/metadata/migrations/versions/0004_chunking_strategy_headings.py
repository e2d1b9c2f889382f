"""Chunking strategies, headings, and sync counters.

- `collections.chunking_strategy` (`semantik.v1.ChunkingStrategy`): collections
  made before it were cut into fixed token windows, so they keep FIXED_TOKENS
  (3); new collections always store an explicit strategy.
- `chunks.heading`: the heading path of a passage (`Intro > Install`), from
  the document's format; '' when none (all earlier chunks).

- `operations.documents_unchanged` / `documents_removed`: what a re-import
  found already indexed (skipped, moved or touched) and what it removed.

All are additions with defaults: PostgreSQL adds them without rewriting the
tables (a constant default is stored in the catalogue), partitions included.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

FIXED_TOKENS = "3"
# RECURSIVE, MARKDOWN, FIXED_TOKENS, SEMANTIC
STRATEGIES = "1, 2, 3, 4"
COUNTERS = ("documents_unchanged", "documents_removed")


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column(
            "chunking_strategy", sa.SmallInteger(), nullable=False, server_default=FIXED_TOKENS
        ),
    )
    op.create_check_constraint(
        "collections_chunking_strategy_check",
        "collections",
        f"chunking_strategy IN ({STRATEGIES})",
    )
    op.add_column("chunks", sa.Column("heading", sa.Text(), nullable=False, server_default=""))
    for counter in COUNTERS:
        op.add_column(
            "operations", sa.Column(counter, sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    for counter in COUNTERS:
        op.drop_column("operations", counter)
    op.drop_column("chunks", "heading")
    op.drop_constraint("collections_chunking_strategy_check", "collections")
    op.drop_column("collections", "chunking_strategy")
