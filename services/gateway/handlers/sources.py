"""SourceService (proto/semantik/v1/source.proto): folders imports may read.

Who may call what is checked by the policy before any method here runs
(security/policy.py: CreateSource admins, ListSources users, the rest READ or
MANAGE on the named source through security/source_access.py). The indexer
resolves a new source's folder, since it is the process that reads it.
"""

from __future__ import annotations

from google.protobuf import empty_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import source_pb2, source_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations, invalid_argument
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.imports import resolve_folder, root_refusal
from services.gateway.security import principal, source_access
from services.gateway.security.principal import Permission

Context = ServicerContext
ROLES = (source_pb2.SOURCE_ROLE_OWNER, source_pb2.SOURCE_ROLE_READER)
MAX_PATH_CHARS = 4096


class SourceHandler(source_pb2_grpc.SourceServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

    async def CreateSource(
        self, request: source_pb2.CreateSourceRequest, context: Context
    ) -> source_pb2.Source:
        violations = FieldViolations()
        validation.check_resource_id(request.source_id, "source_id", violations)
        validation.check_text(
            request.source.path, "source.path", violations, max_chars=MAX_PATH_CHARS, required=True
        )
        validation.check_text(
            request.source.display_name,
            "source.display_name",
            violations,
            max_chars=200,
            required=False,
        )
        if request.source.owner:
            validation.user_id_of(request.source.owner, "source.owner", violations)
        violations.raise_if_any()
        timeout_s = remaining(context, self._timeout_s)
        caller = principal.current()
        resolved = await resolve_folder(self._d, request.source.path, "", timeout_s)
        if isinstance(resolved, dict):
            raise invalid_argument({"source.path": root_refusal(resolved)})
        created = await self._d.metadata.CreateSource(
            metadata_pb2.CreateSourceRequest(
                source=source_pb2.Source(
                    name=f"sources/{request.source_id}",
                    path=resolved.path,
                    display_name=request.source.display_name or request.source_id,
                    owner=request.source.owner or f"users/{caller.user_id}",
                )
            ),
            timeout=timeout_s,
        )
        return source_access.visible(caller, created.source)

    async def GetSource(
        self, request: source_pb2.GetSourceRequest, context: Context
    ) -> source_pb2.Source:
        # The policy has read the source and the caller's role already.
        return await source_access.require(
            self._d.metadata,
            principal.current(),
            request.name,
            Permission.READ,
            timeout_s=remaining(context, self._timeout_s),
            rpc="GetSource",
        )

    async def ListSources(
        self, request: source_pb2.ListSourcesRequest, context: Context
    ) -> source_pb2.ListSourcesResponse:
        violations = FieldViolations()
        validation.check_page(request.page_size, violations)
        violations.raise_if_any()
        caller = principal.current()
        response = await self._d.metadata.ListSources(
            metadata_pb2.ListSourcesRequest(
                page_size=request.page_size,
                page_token=request.page_token,
                restrict_user_id="" if caller.is_admin else caller.user_id,
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return source_pb2.ListSourcesResponse(
            sources=[source_access.visible(caller, source) for source in response.sources],
            next_page_token=response.next_page_token,
        )

    async def DeleteSource(
        self, request: source_pb2.DeleteSourceRequest, context: Context
    ) -> empty_pb2.Empty:
        await self._d.metadata.DeleteSource(
            metadata_pb2.DeleteSourceRequest(name=request.name),
            timeout=remaining(context, self._timeout_s),
        )
        return empty_pb2.Empty()

    async def SetSourceGrant(
        self, request: source_pb2.SetSourceGrantRequest, context: Context
    ) -> source_pb2.SourceGrant:
        violations = FieldViolations()
        source_id = validation.source_id_of(request.parent, "parent", violations)
        user_id = validation.user_id_of(request.user, "user", violations)
        if request.role not in ROLES:
            violations.add("role", "required: SOURCE_ROLE_OWNER or SOURCE_ROLE_READER")
        violations.raise_if_any()
        response = await self._d.metadata.SetSourceGrant(
            metadata_pb2.SetSourceGrantRequest(
                source_id=source_id, user_id=user_id, role=request.role
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return response.grant

    async def ListSourceGrants(
        self, request: source_pb2.ListSourceGrantsRequest, context: Context
    ) -> source_pb2.ListSourceGrantsResponse:
        violations = FieldViolations()
        source_id = validation.source_id_of(request.parent, "parent", violations)
        validation.check_page(request.page_size, violations)
        violations.raise_if_any()
        response = await self._d.metadata.ListSourceGrants(
            metadata_pb2.ListSourceGrantsRequest(
                source_id=source_id, page_size=request.page_size, page_token=request.page_token
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return source_pb2.ListSourceGrantsResponse(
            grants=response.grants, next_page_token=response.next_page_token
        )

    async def DeleteSourceGrant(
        self, request: source_pb2.DeleteSourceGrantRequest, context: Context
    ) -> empty_pb2.Empty:
        # The policy has checked the name's shape: sources/{s}/grants/{u}.
        _, source_id, _, user_id = request.name.split("/")
        await self._d.metadata.DeleteSourceGrant(
            metadata_pb2.DeleteSourceGrantRequest(source_id=source_id, user_id=user_id),
            timeout=remaining(context, self._timeout_s),
        )
        return empty_pb2.Empty()
