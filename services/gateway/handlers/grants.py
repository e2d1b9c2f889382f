"""GrantService (proto/semantik/v1/grant.proto): roles per collection.

The owner grant (or the admin role) is checked by the policy before any
method here runs (security/policy.py).
"""

from __future__ import annotations

from google.protobuf import empty_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import grant_pb2, grant_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams

Context = ServicerContext
ROLES = (
    grant_pb2.COLLECTION_ROLE_OWNER,
    grant_pb2.COLLECTION_ROLE_EDITOR,
    grant_pb2.COLLECTION_ROLE_VIEWER,
)


class GrantHandler(grant_pb2_grpc.GrantServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

    async def SetGrant(
        self, request: grant_pb2.SetGrantRequest, context: Context
    ) -> grant_pb2.Grant:
        violations = FieldViolations()
        collection_id = validation.collection_id_of(request.parent, "parent", violations)
        user_id = validation.user_id_of(request.user, "user", violations)
        if request.role not in ROLES:
            violations.add(
                "role",
                "required: COLLECTION_ROLE_OWNER, COLLECTION_ROLE_EDITOR or COLLECTION_ROLE_VIEWER",
            )
        violations.raise_if_any()
        response = await self._d.metadata.SetGrant(
            metadata_pb2.SetGrantRequest(
                collection_id=collection_id, user_id=user_id, role=request.role
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return response.grant

    async def ListGrants(
        self, request: grant_pb2.ListGrantsRequest, context: Context
    ) -> grant_pb2.ListGrantsResponse:
        violations = FieldViolations()
        collection_id = validation.collection_id_of(request.parent, "parent", violations)
        validation.check_page(request.page_size, violations)
        violations.raise_if_any()
        response = await self._d.metadata.ListGrants(
            metadata_pb2.ListGrantsRequest(
                collection_id=collection_id,
                page_size=request.page_size,
                page_token=request.page_token,
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return grant_pb2.ListGrantsResponse(
            grants=response.grants, next_page_token=response.next_page_token
        )

    async def DeleteGrant(
        self, request: grant_pb2.DeleteGrantRequest, context: Context
    ) -> empty_pb2.Empty:
        # The policy has checked the name's shape: collections/{c}/grants/{u}.
        _, collection_id, _, user_id = request.name.split("/")
        await self._d.metadata.DeleteGrant(
            metadata_pb2.DeleteGrantRequest(collection_id=collection_id, user_id=user_id),
            timeout=remaining(context, self._timeout_s),
        )
        return empty_pb2.Empty()
