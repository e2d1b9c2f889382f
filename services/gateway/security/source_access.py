"""Who may use a source: the one check behind SourceService's rules, imports
and retries.

A source the caller may not use is answered exactly like one that does not
exist (NOT_FOUND, same message), so names of other people's sources cannot be
probed; PERMISSION_DENIED only for what the caller can already see (a
grantee asking to manage).
"""

from __future__ import annotations

import grpc

from semantik.internal.v1 import metadata_pb2, metadata_pb2_grpc
from semantik.v1 import source_pb2
from servicekit.errors import not_found, permission_denied
from services.gateway.security.principal import Permission, Principal

SOURCE = "semantik.io/Source"


def visible(caller: Principal, source: source_pb2.Source) -> source_pb2.Source:
    """`source` as this caller sees it: admins hold every source as owners."""
    if caller.is_admin:
        source.caller_role = source_pb2.SOURCE_ROLE_OWNER
    return source


async def require(
    metadata: metadata_pb2_grpc.MetadataServiceStub,
    caller: Principal,
    name: str,
    permission: Permission,
    *,
    timeout_s: float,
    rpc: str,
) -> source_pb2.Source:
    """The source `name` when `caller` holds `permission` on it (READ: may
    import from it; MANAGE: owner); NOT_FOUND when absent or not theirs."""
    try:
        source = (
            await metadata.GetSource(
                metadata_pb2.GetSourceRequest(name=name, user_id=caller.user_id),
                timeout=timeout_s,
            )
        ).source
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise not_found(SOURCE, name) from None
        raise
    if not caller.can_use_source(Permission.READ, source.caller_role):
        raise not_found(SOURCE, name)
    if not caller.can_use_source(permission, source.caller_role):
        raise permission_denied(f"{rpc} needs the owner of {name} or an admin")
    return visible(caller, source)
