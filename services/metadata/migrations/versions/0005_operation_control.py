"""Operation control: cancel, retry, dead letters, totals and an estimate.

- `operations.cancel_requested`: CancelOperation was called on a running
  operation; its worker stops it (state CANCELLED, 5).
- `operations.retry_of`: a RETRY_DOCUMENTS operation's original (no foreign
  key: operations are history).
- `operations.dead_letters`: documents that kept failing, as
  `[{source_path, reason, attempts}]`, like `document_errors`.
- `operations.bytes_total`, `chunks_total`, `eta_seconds` (NULL: no estimate).
- `operations.include_globs`, `exclude_globs`, `max_file_bytes`: what the
  import asked for, so a retry asks the same.

All are additions with constant defaults (no table rewrite).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

COUNTERS = ("bytes_total", "chunks_total")
GLOBS = ("include_globs", "exclude_globs")


def upgrade() -> None:
    op.add_column(
        "operations",
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("operations", sa.Column("retry_of", postgresql.UUID(), nullable=True))
    op.add_column(
        "operations",
        sa.Column(
            "dead_letters",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
    )
    for counter in COUNTERS:
        op.add_column(
            "operations", sa.Column(counter, sa.BigInteger(), nullable=False, server_default="0")
        )
    op.add_column("operations", sa.Column("eta_seconds", sa.Float(), nullable=True))
    for globs in GLOBS:
        op.add_column(
            "operations",
            sa.Column(
                globs,
                postgresql.ARRAY(sa.Text()),
                nullable=False,
                server_default=sa.text("'{}'::text[]"),
            ),
        )
    op.add_column(
        "operations",
        sa.Column("max_file_bytes", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("operations", "max_file_bytes")
    for globs in GLOBS:
        op.drop_column("operations", globs)
    op.drop_column("operations", "eta_seconds")
    for counter in COUNTERS:
        op.drop_column("operations", counter)
    op.drop_column("operations", "dead_letters")
    op.drop_column("operations", "retry_of")
    op.drop_column("operations", "cancel_requested")
