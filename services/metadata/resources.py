"""Resource names and the conversion of stored rows to API messages.

Names follow AIP-122: `collections/{id}`, `collections/{id}/documents/{uuid}`,
`operations/{uuid}`, `users/{id}`, `collections/{id}/grants/{user}`,
`apiKeys/{id}`, `sources/{id}`, `sources/{id}/grants/{user}`. A malformed
name is INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2
from google.rpc import code_pb2, status_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import (
    api_key_pb2,
    collection_pb2,
    document_pb2,
    grant_pb2,
    operation_pb2,
    source_pb2,
    user_pb2,
)
from servicekit.errors import invalid_argument

COLLECTION_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
COLLECTION_ID_RULE = "1-63 lower-case letters, digits and hyphens, starting with a letter"
# A user id is the login name, spelled as a collection id.
USER_ID = COLLECTION_ID
USER_ID_RULE = COLLECTION_ID_RULE
# A source id is spelled as a collection id.
SOURCE_ID = COLLECTION_ID
SOURCE_ID_RULE = COLLECTION_ID_RULE
API_KEY_ID = re.compile(r"^[a-z0-9]{8,32}$")
API_KEY_ID_RULE = "8-32 lower-case letters and digits"

FINAL_OPERATION_STATES = frozenset(
    {
        operation_pb2.OPERATION_STATE_SUCCEEDED,
        operation_pb2.OPERATION_STATE_FAILED,
        operation_pb2.OPERATION_STATE_CANCELLED,
    }
)

Row = Mapping[str, Any]
"""One row as the store returns it (an asyncpg Record)."""


def is_collection_id(value: str) -> bool:
    return COLLECTION_ID.fullmatch(value) is not None


def parse_uuid(value: str) -> uuid.UUID | None:
    """The UUID in canonical text form (8-4-4-4-12 hex), else None."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    # uuid.UUID also takes braces, URNs and bare hex; names use one spelling only.
    return parsed if str(parsed) == value.lower() else None


def collection_id_of(field: str, value: str) -> str:
    """A bare collection id (as in `collection_id` fields)."""
    if not is_collection_id(value):
        raise invalid_argument({field: f"must be a collection id: {COLLECTION_ID_RULE}"})
    return value


def parse_collection_name(field: str, name: str) -> str:
    prefix, _, collection_id = name.partition("/")
    if prefix != "collections" or not is_collection_id(collection_id):
        raise invalid_argument(
            {field: f"must be collections/{{collection}} with an id of {COLLECTION_ID_RULE}"}
        )
    return collection_id


def parse_document_name(field: str, name: str) -> tuple[str, uuid.UUID]:
    parts = name.split("/")
    document_id = parse_uuid(parts[3]) if len(parts) == 4 else None
    if (
        document_id is None
        or parts[0] != "collections"
        or parts[2] != "documents"
        or not is_collection_id(parts[1])
    ):
        raise invalid_argument(
            {field: "must be collections/{collection}/documents/{document} with a UUID document"}
        )
    return parts[1], document_id


def parse_operation_name(field: str, name: str) -> uuid.UUID:
    prefix, _, raw_id = name.partition("/")
    operation_id = parse_uuid(raw_id) if prefix == "operations" else None
    if operation_id is None:
        raise invalid_argument({field: "must be operations/{operation} with a UUID operation"})
    return operation_id


def is_user_id(value: str) -> bool:
    return USER_ID.fullmatch(value) is not None


def user_id_of(field: str, value: str) -> str:
    """A bare user id (as in `user_id` fields)."""
    if not is_user_id(value):
        raise invalid_argument({field: f"must be a user id: {USER_ID_RULE}"})
    return value


def user_id_in(name: str) -> str | None:
    """The id of `users/{id}`; None when `name` is not one."""
    prefix, _, user_id = name.partition("/")
    return user_id if prefix == "users" and is_user_id(user_id) else None


def parse_user_name(field: str, name: str) -> str:
    user_id = user_id_in(name)
    if user_id is None:
        raise invalid_argument({field: f"must be users/{{user}} with an id of {USER_ID_RULE}"})
    return user_id


def is_source_id(value: str) -> bool:
    return SOURCE_ID.fullmatch(value) is not None


def source_id_of(field: str, value: str) -> str:
    """A bare source id (as in `source_id` fields)."""
    if not is_source_id(value):
        raise invalid_argument({field: f"must be a source id: {SOURCE_ID_RULE}"})
    return value


def source_id_in(name: str) -> str | None:
    """The id of `sources/{id}`; None when `name` is not one."""
    prefix, _, source_id = name.partition("/")
    return source_id if prefix == "sources" and is_source_id(source_id) else None


SOURCE_NAME_RULE = f"must be sources/{{source}} with an id of {SOURCE_ID_RULE}"


def parse_source_name(field: str, name: str) -> str:
    source_id = source_id_in(name)
    if source_id is None:
        raise invalid_argument({field: SOURCE_NAME_RULE})
    return source_id


def is_api_key_id(value: str) -> bool:
    return API_KEY_ID.fullmatch(value) is not None


def api_key_id_of(field: str, value: str) -> str:
    """A bare API key id (as in `api_key_id` fields)."""
    if not is_api_key_id(value):
        raise invalid_argument({field: f"must be an API key id: {API_KEY_ID_RULE}"})
    return value


def collection_name(collection_id: str) -> str:
    return f"collections/{collection_id}"


def document_name(collection_id: str, document_id: uuid.UUID | str) -> str:
    return f"collections/{collection_id}/documents/{document_id}"


def operation_name(operation_id: uuid.UUID | str) -> str:
    return f"operations/{operation_id}"


def user_name(user_id: str) -> str:
    return f"users/{user_id}"


def grant_name(collection_id: str, user_id: str) -> str:
    return f"collections/{collection_id}/grants/{user_id}"


def api_key_name(key_id: str) -> str:
    return f"apiKeys/{key_id}"


def source_name(source_id: str) -> str:
    return f"sources/{source_id}"


def source_grant_name(source_id: str, user_id: str) -> str:
    return f"sources/{source_id}/grants/{user_id}"


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def collection_message(row: Row) -> collection_pb2.Collection:
    return collection_pb2.Collection(
        name=collection_name(row["id"]),
        display_name=row["display_name"],
        description=row["description"],
        chunking=collection_pb2.ChunkingConfig(
            chunk_tokens=row["chunk_tokens"],
            overlap_tokens=row["overlap_tokens"],
            strategy=row["chunking_strategy"],
        ),
        embedding_model=row["embedding_model"],
        embedding_dimensions=row["embedding_dimensions"],
        document_count=row.get("document_count", 0),
        chunk_count=row.get("chunk_count", 0),
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
    )


def document_message(row: Row) -> document_pb2.Document:
    document = document_pb2.Document(
        name=document_name(row["collection_id"], row["id"]),
        source_path=row["source_path"],
        content_hash=row["content_hash"],
        size_bytes=row["size_bytes"],
        mime_type=row["mime_type"],
        state=row["state"],
        error=row["error"],
        chunk_count=row["chunk_count"],
        create_time=timestamp(row["create_time"]),
    )
    if row["modify_time"] is not None:
        document.modify_time.CopyFrom(timestamp(row["modify_time"]))
    return document


def operation_message(row: Row) -> operation_pb2.Operation:
    state = row["state"]
    operation = operation_pb2.Operation(
        name=operation_name(row["id"]),
        kind=row["kind"],
        collection=collection_name(row["collection_id"]),
        source_path=row["source_path"],
        state=state,
        done=state in FINAL_OPERATION_STATES,
        progress=operation_pb2.OperationProgress(
            documents_total=row["documents_total"],
            documents_done=row["documents_done"],
            documents_failed=row["documents_failed"],
            chunks_done=row["chunks_done"],
            bytes_done=row["bytes_done"],
            documents_unchanged=row["documents_unchanged"],
            documents_removed=row["documents_removed"],
            bytes_total=row["bytes_total"],
            chunks_total=row["chunks_total"],
        ),
        document_errors=[_document_error(e) for e in row["document_errors"]],
        dead_letters=[_document_error(e) for e in row["dead_letters"]],
        cancel_requested=row["cancel_requested"],
        include_globs=row["include_globs"],
        exclude_globs=row["exclude_globs"],
        max_file_bytes=row["max_file_bytes"],
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
    )
    if row["retry_of"] is not None:
        operation.retry_of = operation_name(row["retry_of"])
    if row["source_id"] is not None:
        operation.source = source_name(row["source_id"])
    if row["eta_seconds"] is not None:
        operation.progress.eta.FromNanoseconds(round(row["eta_seconds"] * 1e9))
    if state == operation_pb2.OPERATION_STATE_FAILED:
        # The writer reports only a message; the store cannot know a finer code.
        operation.error.CopyFrom(
            status_pb2.Status(code=code_pb2.UNKNOWN, message=row["error_message"])
        )
    if row["end_time"] is not None:
        operation.end_time.CopyFrom(timestamp(row["end_time"]))
    return operation


def chunk_message(row: Row) -> metadata_pb2.ChunkRecord:
    return metadata_pb2.ChunkRecord(
        chunk_id=str(row["id"]),
        chunk_index=row["chunk_index"],
        text=row["text"],
        start_offset=row["start_offset"],
        end_offset=row["end_offset"],
        token_count=row["token_count"],
        page=row["page"],
        heading=row["heading"],
    )


def user_message(row: Row) -> user_pb2.User:
    """The public view of a `users` row."""
    return user_pb2.User(
        name=user_name(row["id"]),
        display_name=row["display_name"],
        role=row["role"],
        create_time=timestamp(row["create_time"]),
    )


def user_record(row: Row) -> metadata_pb2.UserRecord:
    """A `users` row with what only the gateway may see."""
    return metadata_pb2.UserRecord(
        user=user_message(row),
        password_hash=row["password_hash"],
        token_version=row["token_version"],
    )


def _grant_fields(row: Row) -> dict[str, Any]:
    """What a collection's and a source's grant have alike: user, role, time."""
    return {
        "user": user_name(row["user_id"]),
        "role": row["role"],
        "update_time": timestamp(row["update_time"]),
    }


def grant_message(row: Row) -> grant_pb2.Grant:
    return grant_pb2.Grant(
        name=grant_name(row["collection_id"], row["user_id"]), **_grant_fields(row)
    )


def source_message(row: Row) -> source_pb2.Source:
    """A `sources` row; `caller_role` when the query computed one."""
    owner = row["owner_user_id"]
    return source_pb2.Source(
        name=source_name(row["id"]),
        path=row["path"],
        display_name=row["display_name"],
        owner="" if owner is None else user_name(owner),
        create_time=timestamp(row["create_time"]),
        caller_role=row.get("caller_role", source_pb2.SOURCE_ROLE_UNSPECIFIED),
    )


def source_grant_message(row: Row) -> source_pb2.SourceGrant:
    return source_pb2.SourceGrant(
        name=source_grant_name(row["source_id"], row["user_id"]), **_grant_fields(row)
    )


def api_key_message(row: Row) -> api_key_pb2.ApiKey:
    """The public view of an `api_keys` row (no secret hash)."""
    key = api_key_pb2.ApiKey(
        name=api_key_name(row["id"]),
        display_name=row["display_name"],
        collections=[collection_name(c) for c in row["collections"]],
        verbs=row["verbs"],
        owner=user_name(row["user_id"]),
        create_time=timestamp(row["create_time"]),
    )
    if row["expire_time"] is not None:
        key.expire_time.CopyFrom(timestamp(row["expire_time"]))
    return key


def api_key_record(row: Row) -> metadata_pb2.ApiKeyRecord:
    return metadata_pb2.ApiKeyRecord(
        api_key=api_key_message(row), secret_hash=bytes(row["secret_hash"])
    )


def _document_error(stored: Mapping[str, Any]) -> operation_pb2.DocumentError:
    return operation_pb2.DocumentError(
        source_path=stored["source_path"],
        reason=stored["reason"],
        attempts=stored.get("attempts", 1),
    )
