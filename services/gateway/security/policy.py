"""The policy table: one rule for every public RPC, read by the one interceptor.

An RPC of `semantik.v1` without a rule is refused (fail closed), and the
test suite generates its authorisation matrix from this table, so a new RPC
cannot ship without a decision here.

Denials never reveal what a caller may not read: a collection (or a document,
grant or operation in one) that the caller cannot read is answered exactly
as if it did not exist (NOT_FOUND); PERMISSION_DENIED is only for what the
caller can already see.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from servicekit.errors import FieldViolations
from services.gateway import validation
from services.gateway.security.principal import Permission

COLLECTION = "semantik.io/Collection"
DOCUMENT = "semantik.io/Document"
GRANT = "semantik.io/Grant"
OPERATION = "semantik.io/Operation"
SOURCE = "semantik.io/Source"
SOURCE_GRANT = "semantik.io/SourceGrant"

MAX_SEARCH_COLLECTIONS = 20
_GRANT_NAME = re.compile(r"^collections/([a-z][a-z0-9-]{0,62})/grants/([a-z][a-z0-9-]{0,62})$")
_SOURCE_GRANT_NAME = re.compile(r"^sources/([a-z][a-z0-9-]{0,62})/grants/([a-z][a-z0-9-]{0,62})$")


class Access(enum.Enum):
    # Anyone; credentials are not read (sign-in itself).
    PUBLIC = "public"
    # A signed-in user (an access token); API keys are refused.
    USER = "user"
    # A signed-in global admin.
    ADMIN = "admin"
    # Global role admin or editor; a key needs WRITE on the new collection's id.
    CREATE_COLLECTION = "create_collection"
    # `permission` on the collection the request names.
    COLLECTION = "collection"
    # Any caller; the handler lists only collections the caller may read.
    LISTING = "listing"
    # `permission` on the collection of the operation the request names
    # (found by reading the operation).
    OPERATION = "operation"
    # A signed-in user (keys are refused: their scope is collections) with
    # `permission` on the source the request names (found by reading the
    # source and the caller's role on it from metadata).
    SOURCE = "source"


@dataclass(frozen=True)
class Target:
    """Where a request names its collection (or collections)."""

    field: str
    resource_type: str
    collection_id: Callable[[str, str, FieldViolations], str]
    # For Search: `collection`, or the repeated `collections` when it is empty.
    repeated_field: str = ""

    def named(self, request: Any, violations: FieldViolations) -> list[tuple[str, str]]:
        """(resource name as sent, collection id) for each collection the request names."""
        single = str(getattr(request, self.field))
        several = list(getattr(request, self.repeated_field)) if self.repeated_field else []
        if self.repeated_field and several:
            if single:
                violations.add(self.field, f"set {self.field} or {self.repeated_field}, not both")
                return []
            if len(several) > MAX_SEARCH_COLLECTIONS:
                violations.add(self.repeated_field, f"at most {MAX_SEARCH_COLLECTIONS}")
                return []
            named = [
                (name, self.collection_id(name, f"{self.repeated_field}[{i}]", violations))
                for i, name in enumerate(several)
            ]
        else:
            named = [(single, self.collection_id(single, self.field, violations))]
        return [] if violations else named


def _collection(value: str, field: str, violations: FieldViolations) -> str:
    return validation.collection_id_of(value, field, violations)


def _document(value: str, field: str, violations: FieldViolations) -> str:
    validation.check_document_name(value, field, violations)
    return "" if violations else value.split("/")[1]


IdOf = Callable[[str, str, FieldViolations], str]


def _grant_of(pattern: re.Pattern[str], template: str) -> IdOf:
    def parent_id(value: str, field: str, violations: FieldViolations) -> str:
        match = pattern.match(value)
        if match is None:
            shape = f"{value!r} is not a grant name ({template})"
            violations.add(field, shape if value else f"required, as {template}")
            return ""
        return match.group(1)

    return parent_id


_grant = _grant_of(_GRANT_NAME, "collections/{collection}/grants/{user}")
_source_grant = _grant_of(_SOURCE_GRANT_NAME, "sources/{source}/grants/{user}")


def _source(value: str, field: str, violations: FieldViolations) -> str:
    return validation.source_id_of(value, field, violations)


def _new_collection(value: str, field: str, violations: FieldViolations) -> str:
    validation.check_resource_id(value, field, violations)
    return "" if violations else value


def _operation(value: str, field: str, violations: FieldViolations) -> str:
    validation.check_operation_name(value, field, violations)
    return value


@dataclass(frozen=True)
class Rule:
    access: Access
    permission: Permission | None = None
    target: Target | None = None
    # A call changes who may do what (sign-ins, passwords, users, keys,
    # grants, collections): cached principals are forgotten after it.
    changes_access: bool = False

    def field_value(self, request: Any) -> str:
        assert self.target is not None
        return str(getattr(request, self.target.field))

    def collections(self, request: Any) -> list[tuple[str, str]]:
        """(name as sent, collection id) pairs the request names; INVALID_ARGUMENT if malformed."""
        assert self.target is not None
        violations = FieldViolations()
        named = self.target.named(request, violations)
        violations.raise_if_any()
        return named


def _on(
    permission: Permission,
    field: str,
    resource_type: str = COLLECTION,
    *,
    changes_access: bool = False,
) -> Rule:
    extract = {COLLECTION: _collection, DOCUMENT: _document, GRANT: _grant}[resource_type]
    return Rule(
        Access.COLLECTION, permission, Target(field, resource_type, extract), changes_access
    )


def _on_source(permission: Permission, field: str, resource_type: str = SOURCE) -> Rule:
    extract = {SOURCE: _source, SOURCE_GRANT: _source_grant}[resource_type]
    return Rule(Access.SOURCE, permission, Target(field, resource_type, extract))


READ, WRITE, MANAGE = Permission.READ, Permission.WRITE, Permission.MANAGE
# Search names one collection or several; the handler reads them the same way.
SEARCH_COLLECTIONS = Target("collection", COLLECTION, _collection, "collections")
PUBLIC = Rule(Access.PUBLIC)
USER = Rule(Access.USER)
ADMIN = Rule(Access.ADMIN)
LISTING = Rule(Access.LISTING)
USER_CHANGING_ACCESS = Rule(Access.USER, changes_access=True)
ADMIN_CHANGING_ACCESS = Rule(Access.ADMIN, changes_access=True)

POLICY: Mapping[str, Rule] = {
    # AuthService (auth.proto)
    "/semantik.v1.AuthService/BootstrapAdmin": PUBLIC,
    "/semantik.v1.AuthService/Login": PUBLIC,
    "/semantik.v1.AuthService/RefreshToken": PUBLIC,
    "/semantik.v1.AuthService/Logout": USER_CHANGING_ACCESS,
    "/semantik.v1.AuthService/ChangePassword": USER_CHANGING_ACCESS,
    "/semantik.v1.AuthService/GetCurrentUser": USER,
    # UserService (user.proto)
    "/semantik.v1.UserService/CreateUser": ADMIN,
    "/semantik.v1.UserService/GetUser": ADMIN,
    "/semantik.v1.UserService/ListUsers": ADMIN,
    "/semantik.v1.UserService/DeleteUser": ADMIN_CHANGING_ACCESS,
    # ApiKeyService (api_key.proto): a user's own keys
    "/semantik.v1.ApiKeyService/CreateApiKey": USER,
    "/semantik.v1.ApiKeyService/ListApiKeys": USER,
    "/semantik.v1.ApiKeyService/DeleteApiKey": USER_CHANGING_ACCESS,
    # GrantService (grant.proto)
    "/semantik.v1.GrantService/SetGrant": _on(MANAGE, "parent", changes_access=True),
    "/semantik.v1.GrantService/ListGrants": _on(MANAGE, "parent"),
    "/semantik.v1.GrantService/DeleteGrant": _on(MANAGE, "name", GRANT, changes_access=True),
    # CollectionService (collection.proto)
    "/semantik.v1.CollectionService/CreateCollection": Rule(
        Access.CREATE_COLLECTION,
        WRITE,
        Target("collection_id", COLLECTION, _new_collection),
        changes_access=True,
    ),
    "/semantik.v1.CollectionService/GetCollection": _on(READ, "name"),
    "/semantik.v1.CollectionService/ListCollections": LISTING,
    "/semantik.v1.CollectionService/DeleteCollection": _on(MANAGE, "name", changes_access=True),
    # DocumentService (document.proto)
    "/semantik.v1.DocumentService/ImportDocuments": _on(WRITE, "parent"),
    # A client stream: judged on its first message (see interceptor.py).
    "/semantik.v1.DocumentService/UploadDocuments": _on(WRITE, "parent"),
    "/semantik.v1.DocumentService/GetDocument": _on(READ, "name", DOCUMENT),
    "/semantik.v1.DocumentService/ListDocuments": _on(READ, "parent"),
    # OperationService (operation.proto)
    "/semantik.v1.OperationService/GetOperation": Rule(
        Access.OPERATION, READ, Target("name", OPERATION, _operation)
    ),
    "/semantik.v1.OperationService/ListOperations": LISTING,
    "/semantik.v1.OperationService/WatchOperation": Rule(
        Access.OPERATION, READ, Target("name", OPERATION, _operation)
    ),
    "/semantik.v1.OperationService/CancelOperation": Rule(
        Access.OPERATION, WRITE, Target("name", OPERATION, _operation)
    ),
    "/semantik.v1.OperationService/RetryOperation": Rule(
        Access.OPERATION, WRITE, Target("name", OPERATION, _operation)
    ),
    # SourceService (source.proto): READ = may import from it, MANAGE = owner
    "/semantik.v1.SourceService/CreateSource": ADMIN,
    "/semantik.v1.SourceService/GetSource": _on_source(READ, "name"),
    "/semantik.v1.SourceService/ListSources": USER,
    "/semantik.v1.SourceService/DeleteSource": _on_source(MANAGE, "name"),
    "/semantik.v1.SourceService/SetSourceGrant": _on_source(MANAGE, "parent"),
    "/semantik.v1.SourceService/ListSourceGrants": _on_source(MANAGE, "parent"),
    "/semantik.v1.SourceService/DeleteSourceGrant": _on_source(MANAGE, "name", SOURCE_GRANT),
    # SearchService (search.proto)
    "/semantik.v1.SearchService/Search": Rule(Access.COLLECTION, READ, SEARCH_COLLECTIONS),
}

PUBLIC_PACKAGE_PREFIX = "/semantik.v1."
