"""Who is calling and what they may do, resolved once per call.

A user's power comes from their global role (admin: everything) and their
grants per collection. An API key acts for its user, narrowed to the
collections and verbs it names.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from semantik.v1 import api_key_pb2, grant_pb2, source_pb2, user_pb2


class Permission(IntEnum):
    READ = 1
    WRITE = 2
    MANAGE = 3


ROLE_PERMISSIONS: Mapping[int, frozenset[Permission]] = {
    grant_pb2.COLLECTION_ROLE_OWNER: frozenset(Permission),
    grant_pb2.COLLECTION_ROLE_EDITOR: frozenset({Permission.READ, Permission.WRITE}),
    grant_pb2.COLLECTION_ROLE_VIEWER: frozenset({Permission.READ}),
}
# On a source, READ is "may import from it"; MANAGE is "may delete it and
# manage its grants".
SOURCE_ROLE_PERMISSIONS: Mapping[int, frozenset[Permission]] = {
    source_pb2.SOURCE_ROLE_OWNER: frozenset(Permission),
    source_pb2.SOURCE_ROLE_READER: frozenset({Permission.READ}),
}
VERB_PERMISSIONS: Mapping[int, Permission] = {
    api_key_pb2.API_KEY_VERB_READ: Permission.READ,
    api_key_pb2.API_KEY_VERB_WRITE: Permission.WRITE,
    api_key_pb2.API_KEY_VERB_MANAGE: Permission.MANAGE,
}
CREATOR_ROLES = frozenset({user_pb2.ROLE_ADMIN, user_pb2.ROLE_EDITOR})


@dataclass(frozen=True)
class KeyScope:
    collection_ids: frozenset[str]
    permissions: frozenset[Permission]


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: int
    grants: Mapping[str, int]
    key: KeyScope | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == user_pb2.ROLE_ADMIN

    def _key_allows(self, permission: Permission, collection_id: str) -> bool:
        return self.key is None or (
            collection_id in self.key.collection_ids and permission in self.key.permissions
        )

    def can(self, permission: Permission, collection_id: str) -> bool:
        if not self._key_allows(permission, collection_id):
            return False
        if self.is_admin:
            return True
        role = self.grants.get(collection_id)
        return role is not None and permission in ROLE_PERMISSIONS.get(role, frozenset())

    def can_create(self, collection_id: str) -> bool:
        return self.role in CREATOR_ROLES and self._key_allows(Permission.WRITE, collection_id)

    def can_use_source(self, permission: Permission, role: int) -> bool:
        """`permission` on a source where the caller's own role is `role`
        (UNSPECIFIED: none). Admins may do anything with any source; the
        collection scope of a key does not reach sources."""
        return self.is_admin or permission in SOURCE_ROLE_PERMISSIONS.get(role, frozenset())

    def readable_collections(self) -> frozenset[str] | None:
        """Collection ids this caller may read; None means every collection."""
        if self.is_admin and self.key is None:
            return None
        candidates = self.key.collection_ids if self.key is not None else frozenset(self.grants)
        return frozenset(c for c in candidates if self.can(Permission.READ, c))


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "semantik_principal", default=None
)


def set_current(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def reset_current(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)


def current() -> Principal:
    """The caller of the RPC being served; only for RPCs whose rule needs credentials."""
    principal = _current.get()
    if principal is None:
        raise RuntimeError("no principal: the RPC's policy does not authenticate")
    return principal


def listing_scope() -> dict[str, Any]:
    """Fields of an internal List request that keep out what the caller cannot read."""
    readable = current().readable_collections()
    if readable is None:
        return {}
    return {"restrict_collections": True, "collection_ids": sorted(readable)}
