"""Sources: the folders on the server that imports may read.

- `sources`: id (as a collection id: `sources/{id}`), the folder's absolute
  `path` (unique), a display name, the owner (`users`, SET NULL when the
  user is deleted: the source stays for admins to manage) and when it was
  registered.
- `source_grants`: one role (`semantik.v1.SourceRole`: OWNER 1, READER 2)
  per user and source; they go with either. Indexed by user, for the
  listing of a user's sources.
- `operations.source_id`: the source an import read. No foreign key:
  operations are history and keep the id after the source is deleted.

Upgrade note. Until now any folder could be imported; from here on an
import reads a registered source. So that nothing indexed is lost, every
folder already imported (each distinct non-empty `operations.source_path`)
is registered as a source, in SQL and deterministically:

- id: a slug of the folder's base name (lower case, runs of anything but
  `a-z0-9` made one `-`, `src-` in front unless it starts with a letter, at
  most 54 characters) + `-` + the first 8 hex digits of md5(path), e.g.
  `/srv/Team Notes` → `team-notes-` and 8 hex digits; display name: the
  base name (`Team Notes`);
  registered at the time of its first import;
- owner: the owner (COLLECTION_ROLE_OWNER grant; the smallest user id if
  several) of the collection of the earliest operation with that path; none
  when that collection has no owner (any more);
- the owners of the other collections that imported it get a READER grant;
- those operations get `source_id`.

Paths are recorded as they were imported: nothing is re-resolved (a
symbolic link, a trailing slash or `/` itself stays as it was), so a source
whose recorded path is not canonical is found by its id, not by a path
under it; an admin may delete it and register the folder again.

Downgrade drops all of this (registered sources and grants are lost).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-16
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

NOW = sa.text("now()")
# semantik.v1.SourceRole OWNER, READER.
ROLES = "1, 2"
READER = 2
# CollectionRole OWNER.
COLLECTION_OWNER = 1

# Each imported folder once, with its earliest operation (create time, then
# id: deterministic), the folder's base name and the slug made of it.
IMPORTED_FOLDERS = """
    WITH first AS (
        SELECT DISTINCT ON (o.source_path)
               o.source_path AS path, o.collection_id, o.create_time
        FROM operations o
        WHERE o.source_path <> ''
        ORDER BY o.source_path, o.create_time, o.id
    ), named AS (
        SELECT path, collection_id, create_time,
               regexp_replace(rtrim(path, '/'), '^.*/', '') AS base
        FROM first
    ), slugged AS (
        SELECT path, collection_id, create_time, base,
               btrim(regexp_replace(lower(base), '[^a-z0-9]+', '-', 'g'), '-') AS slug
        FROM named
    )
"""
REGISTER_SOURCES = f"""
    {IMPORTED_FOLDERS}
    INSERT INTO sources (id, path, display_name, owner_user_id, create_time)
    SELECT rtrim(left(CASE WHEN slug ~ '^[a-z]' THEN slug ELSE 'src-' || slug END, 54), '-')
               || '-' || left(md5(path), 8),
           path,
           base,
           (SELECT min(g.user_id) FROM collection_grants g
            WHERE g.collection_id = slugged.collection_id AND g.role = {COLLECTION_OWNER}),
           create_time
    FROM slugged
"""
GRANT_READERS = f"""
    INSERT INTO source_grants (source_id, user_id, role)
    SELECT DISTINCT s.id, g.user_id, {READER}
    FROM operations o
    JOIN sources s ON s.path = o.source_path
    JOIN collection_grants g ON g.collection_id = o.collection_id AND g.role = {COLLECTION_OWNER}
    WHERE g.user_id IS DISTINCT FROM s.owner_user_id
"""
LINK_OPERATIONS = """
    UPDATE operations o SET source_id = s.id
    FROM sources s WHERE s.path = o.source_path
"""


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.TIMESTAMP(timezone=True), nullable=False, server_default=NOW)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False, server_default=""),
        sa.Column(
            "owner_user_id",
            sa.Text(),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        _timestamp("create_time"),
        sa.UniqueConstraint("path", name="sources_path_key"),
    )
    op.create_index("sources_owner_user_id_idx", "sources", ["owner_user_id"])
    op.create_table(
        "source_grants",
        sa.Column(
            "source_id",
            sa.Text(),
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
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
        sa.CheckConstraint(f"role IN ({ROLES})", name="source_grants_role_check"),
    )
    op.create_index("source_grants_user_id_idx", "source_grants", ["user_id"])
    op.add_column("operations", sa.Column("source_id", sa.Text(), nullable=True))

    # The folders imported so far (see the docstring).
    op.execute(REGISTER_SOURCES)
    op.execute(GRANT_READERS)
    op.execute(LINK_OPERATIONS)


def downgrade() -> None:
    op.drop_column("operations", "source_id")
    op.drop_index("source_grants_user_id_idx", table_name="source_grants")
    op.drop_table("source_grants")
    op.drop_index("sources_owner_user_id_idx", table_name="sources")
    op.drop_table("sources")
