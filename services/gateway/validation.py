"""Checks of public request fields, shared by the gateway's handlers.

Every failure names the field (AIP-193 field path with proto names), so a
caller never gets INTERNAL or an unexplained error for bad input.
"""

from __future__ import annotations

import re

from servicekit.errors import FieldViolations

# Ids of collections and users (AIP-122).
RESOURCE_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
RESOURCE_ID_RULE = "1-63 characters: lower-case letters, digits and hyphens, starting with a letter"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_COLLECTION_NAME = re.compile(r"^collections/([a-z][a-z0-9-]{0,62})$")
_DOCUMENT_NAME = re.compile(rf"^collections/([a-z][a-z0-9-]{{0,62}})/documents/({_UUID})$")
_OPERATION_NAME = re.compile(rf"^operations/({_UUID})$")
_SOURCE_NAME = re.compile(r"^sources/([a-z][a-z0-9-]{0,62})$")

MAX_PAGE_SIZE = 1000


def _id_in(
    name: str, field: str, violations: FieldViolations, pattern: re.Pattern[str], kind: str
) -> str:
    """The id in `{kind}s/{id}`, or '' with a violation recorded."""
    template = f"{kind}s/{{{kind}}}"
    if not name:
        violations.add(field, f"required, as {template}")
        return ""
    match = pattern.match(name)
    if match is None:
        violations.add(field, f"{name!r} is not a {kind} name ({template})")
        return ""
    return match.group(1)


def collection_id_of(name: str, field: str, violations: FieldViolations) -> str:
    """The id in `collections/{id}`, or '' with a violation recorded."""
    return _id_in(name, field, violations, _COLLECTION_NAME, "collection")


def source_id_of(name: str, field: str, violations: FieldViolations) -> str:
    """The id in `sources/{id}`, or '' with a violation recorded."""
    return _id_in(name, field, violations, _SOURCE_NAME, "source")


def check_document_name(name: str, field: str, violations: FieldViolations) -> None:
    if not name:
        violations.add(field, "required, as collections/{collection}/documents/{document}")
    elif _DOCUMENT_NAME.match(name) is None:
        violations.add(
            field,
            f"{name!r} is not a document name (collections/{{collection}}/documents/{{uuid}})",
        )


def check_operation_name(name: str, field: str, violations: FieldViolations) -> None:
    if not name:
        violations.add(field, "required, as operations/{operation}")
    elif _OPERATION_NAME.match(name) is None:
        violations.add(field, f"{name!r} is not an operation name (operations/{{uuid}})")


def check_page(page_size: int, violations: FieldViolations) -> None:
    # AIP-158: 0 means the default, larger values are coerced to the maximum
    # by the owner of the list; only negative sizes are errors.
    if page_size < 0:
        violations.add("page_size", "must not be negative")


def check_text(
    value: str, field: str, violations: FieldViolations, *, max_chars: int, required: bool
) -> None:
    if required and not value.strip():
        violations.add(field, "required and must not be blank")
    elif len(value) > max_chars:
        violations.add(field, f"at most {max_chars} characters, got {len(value)}")


_USER_NAME = re.compile(r"^users/([a-z][a-z0-9-]{0,62})$")


def check_resource_id(value: str, field: str, violations: FieldViolations) -> None:
    """A caller-chosen collection or user id (`collection_id`, `user_id`)."""
    if not value:
        violations.add(field, "required")
    elif RESOURCE_ID.match(value) is None:
        violations.add(field, RESOURCE_ID_RULE)


def user_id_of(name: str, field: str, violations: FieldViolations) -> str:
    """The id in `users/{id}`, or '' with a violation recorded."""
    return _id_in(name, field, violations, _USER_NAME, "user")
