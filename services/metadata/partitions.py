"""The chunk partition key: one definition, in Python and in SQL.

Chunks are LIST-partitioned on `chunks.partition_key`, a stored column. Its
value is a function of the collection id only, so every chunk of a collection
lives in one partition and HydrateChunks (always per collection) touches one.

The key is computed in exactly two places that must agree, and are tested to:
`partition_key()` here (used by the writer for COPY and by readers to prune)
and the SQL function `chunk_partition_key(text)` made by migration 0002. A
CHECK constraint on `chunks` makes the database refuse any row whose stored
key is not `chunk_partition_key(collection_id)`, so a disagreement can never
be written, only rejected.
"""

from __future__ import annotations

import hashlib

PARTITION_COUNT = 100


def partition_key(collection_id: str) -> int:
    """The first 32 bits of md5(collection id, UTF-8), modulo PARTITION_COUNT."""
    digest = hashlib.md5(collection_id.encode("utf-8"), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) % PARTITION_COUNT


def partition_name(key: int) -> str:
    return f"chunks_p{key:02d}"
