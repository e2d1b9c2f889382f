"""UserService (proto/semantik/v1/user.proto): accounts, admin only (see security/policy.py)."""

from __future__ import annotations

from google.protobuf import empty_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import user_pb2, user_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations, failed_precondition
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.security import passwords, principal

Context = ServicerContext
ROLES = (user_pb2.ROLE_ADMIN, user_pb2.ROLE_EDITOR, user_pb2.ROLE_VIEWER)


class UserHandler(user_pb2_grpc.UserServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

    async def CreateUser(
        self, request: user_pb2.CreateUserRequest, context: Context
    ) -> user_pb2.User:
        violations = FieldViolations()
        validation.check_resource_id(request.user_id, "user_id", violations)
        if not request.HasField("user"):
            violations.add("user", "required")
        elif request.user.role not in ROLES:
            violations.add("user.role", "required: ROLE_ADMIN, ROLE_EDITOR or ROLE_VIEWER")
        validation.check_text(
            request.user.display_name,
            "user.display_name",
            violations,
            max_chars=200,
            required=False,
        )
        passwords.check_new_password(request.password, "password", violations)
        violations.raise_if_any()
        record = metadata_pb2.UserRecord(
            user=user_pb2.User(
                name=f"users/{request.user_id}",
                display_name=request.user.display_name or request.user_id,
                role=request.user.role,
            ),
            password_hash=await passwords.hash_password(request.password),
        )
        created = await self._d.metadata.CreateUser(
            metadata_pb2.CreateUserRequest(user=record),
            timeout=remaining(context, self._timeout_s),
        )
        return created.user.user

    async def GetUser(self, request: user_pb2.GetUserRequest, context: Context) -> user_pb2.User:
        violations = FieldViolations()
        user_id = validation.user_id_of(request.name, "name", violations)
        violations.raise_if_any()
        response = await self._d.metadata.GetUser(
            metadata_pb2.GetUserRequest(user_id=user_id),
            timeout=remaining(context, self._timeout_s),
        )
        return response.user.user

    async def ListUsers(
        self, request: user_pb2.ListUsersRequest, context: Context
    ) -> user_pb2.ListUsersResponse:
        violations = FieldViolations()
        validation.check_page(request.page_size, violations)
        violations.raise_if_any()
        response = await self._d.metadata.ListUsers(
            metadata_pb2.ListUsersRequest(
                page_size=request.page_size, page_token=request.page_token
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return user_pb2.ListUsersResponse(
            users=response.users, next_page_token=response.next_page_token
        )

    async def DeleteUser(
        self, request: user_pb2.DeleteUserRequest, context: Context
    ) -> empty_pb2.Empty:
        violations = FieldViolations()
        user_id = validation.user_id_of(request.name, "name", violations)
        violations.raise_if_any()
        if user_id == principal.current().user_id:
            # Deleting oneself could leave no admin at all.
            raise failed_precondition("an admin cannot delete their own account", request.name)
        await self._d.metadata.DeleteUser(
            metadata_pb2.DeleteUserRequest(user_id=user_id),
            timeout=remaining(context, self._timeout_s),
        )
        return empty_pb2.Empty()
