"""Accounts: users, refresh tokens, collection grants, API keys.

0002 made `users`, `roles`, `user_roles` and `api_keys` ahead of the security
work, and no code ever wrote to them. The contract that work settled on
(`semantik.internal.v1.MetadataService`, CreateUser … ResolvePrincipal) needs
other shapes, so they are dropped and made anew:

- `users`: the id is the login name (`users/{id}`), a global role
  (`semantik.v1.Role`), the password's PHC hash and a token version that
  SetPassword bumps (access tokens carry the version they were made at).
- `refresh_tokens`: SHA-256 of each token (never the token), rotated within a
  family; a spent token presented again revokes its family.
- `collection_grants`: one role (`semantik.v1.CollectionRole`) per user and
  collection; they go with either.
- `api_keys`: id = the key's public prefix, SHA-256 of the whole secret, the
  collection ids and verbs (`semantik.v1.ApiKeyVerb`) it is limited to.

Downgrade drops these (their rows are lost: 0002 has nowhere to keep them)
and makes 0002's tables again, empty, as they were.

Revision ID: 0003
Revises: 0002
Create Date: 2025-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

NOW = sa.text("now()")
# semantik.v1.Role ADMIN, EDITOR, VIEWER; semantik.v1.CollectionRole OWNER,
# EDITOR, VIEWER; semantik.v1.ApiKeyVerb READ, WRITE, MANAGE.
ROLES = "1, 2, 3"
VERBS = "ARRAY[1, 2, 3]::smallint[]"


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.TIMESTAMP(timezone=True),
        nullable=nullable,
        server_default=None if nullable else NOW,
    )


def _user_id() -> sa.Column[object]:
    return sa.Column(
        "user_id", sa.Text(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    # Never written to (see the docstring): nothing to carry over.
    op.drop_index("api_keys_user_id_idx", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("user_roles")
    op.drop_table("roles")
    op.drop_table("users")

    op.create_table(
        "users",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("display_name", sa.Text(), nullable=False, server_default=""),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("token_version", sa.BigInteger(), nullable=False, server_default="1"),
        _timestamp("create_time"),
        _timestamp("update_time"),
        sa.CheckConstraint(f"role IN ({ROLES})", name="users_role_check"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary(), primary_key=True),
        sa.Column("family_id", postgresql.UUID(), nullable=False),
        _user_id(),
        sa.Column("expire_time", sa.TIMESTAMP(timezone=True), nullable=False),
        _timestamp("used_time", nullable=True),
        _timestamp("revoke_time", nullable=True),
        _timestamp("create_time"),
    )
    op.create_index("refresh_tokens_family_id_idx", "refresh_tokens", ["family_id"])
    op.create_index("refresh_tokens_user_id_idx", "refresh_tokens", ["user_id"])
    op.create_table(
        "collection_grants",
        sa.Column(
            "collection_id",
            sa.Text(),
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.Text(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        _timestamp("update_time"),
        sa.CheckConstraint(f"role IN ({ROLES})", name="collection_grants_role_check"),
    )
    op.create_index("collection_grants_user_id_idx", "collection_grants", ["user_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text(), primary_key=True),
        _user_id(),
        sa.Column("display_name", sa.Text(), nullable=False, server_default=""),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("collections", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("verbs", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        _timestamp("expire_time", nullable=True),
        _timestamp("create_time"),
        _timestamp("last_used_time", nullable=True),
        _timestamp("revoke_time", nullable=True),
        sa.CheckConstraint("octet_length(secret_hash) = 32", name="api_keys_secret_hash_check"),
        sa.CheckConstraint(
            f"cardinality(collections) > 0 AND cardinality(verbs) > 0 AND verbs <@ {VERBS}",
            name="api_keys_scope_check",
        ),
    )
    op.create_index("api_keys_user_id_idx", "api_keys", ["user_id"])


def downgrade() -> None:
    op.drop_index("api_keys_user_id_idx", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("collection_grants_user_id_idx", table_name="collection_grants")
    op.drop_table("collection_grants")
    op.drop_index("refresh_tokens_user_id_idx", table_name="refresh_tokens")
    op.drop_index("refresh_tokens_family_id_idx", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_table("users")

    # 0002's tables, as 0002 made them.
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
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        _timestamp("create_time"),
        _timestamp("expire_time", nullable=True),
        _timestamp("last_used_time", nullable=True),
        _timestamp("revoke_time", nullable=True),
        sa.UniqueConstraint("prefix", name="api_keys_prefix_key"),
    )
    op.create_index("api_keys_user_id_idx", "api_keys", ["user_id"])
