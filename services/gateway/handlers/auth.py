"""AuthService (proto/semantik/v1/auth.proto): bootstrap, sign-in, tokens."""

from __future__ import annotations

import hmac
import logging
import time
import uuid

import grpc
from google.protobuf import empty_pb2, timestamp_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import auth_pb2, auth_pb2_grpc, user_pb2
from servicekit.channels import remaining
from servicekit.errors import FieldViolations, failed_precondition, unauthenticated
from servicekit.grpc_types import ServicerContext
from services.gateway.downstream import Downstreams
from services.gateway.security import credentials, passwords, principal
from services.gateway.security.credentials import AccessTokens
from services.gateway.security.principal_cache import PrincipalCache
from services.gateway.validation import check_resource_id

Context = ServicerContext
log = logging.getLogger(__name__)

WRONG_LOGIN = "wrong user id or password"


def _expiry(seconds_from_now: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(time.time()) + seconds_from_now)


class AuthHandler(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        downstream: Downstreams,
        default_timeout_s: float,
        access_tokens: AccessTokens,
        refresh_ttl_s: int,
        bootstrap_token: str,
        *,
        principals: PrincipalCache,
    ) -> None:
        self._d = downstream
        self._principals = principals
        self._timeout_s = default_timeout_s
        self._access = access_tokens
        self._refresh_ttl_s = refresh_ttl_s
        self._bootstrap_token = bootstrap_token

    def _issue(
        self, user_id: str, token_version: int, session_id: str, refresh_token: str
    ) -> auth_pb2.AuthTokens:
        return auth_pb2.AuthTokens(
            access_token=self._access.issue(user_id, token_version, session_id),
            token_type="Bearer",
            expires_in=self._access.ttl_s,
            refresh_token=refresh_token,
            refresh_expires_in=self._refresh_ttl_s,
        )

    async def BootstrapAdmin(
        self, request: auth_pb2.BootstrapAdminRequest, context: Context
    ) -> user_pb2.User:
        violations = FieldViolations()
        if not request.bootstrap_token:
            violations.add("bootstrap_token", "required")
        check_resource_id(request.user_id, "user_id", violations)
        passwords.check_new_password(request.password, "password", violations)
        violations.raise_if_any()
        if not hmac.compare_digest(
            request.bootstrap_token.encode(), self._bootstrap_token.encode()
        ):
            raise unauthenticated("wrong bootstrap token", "INVALID_CREDENTIAL")
        record = metadata_pb2.UserRecord(
            user=user_pb2.User(
                name=f"users/{request.user_id}",
                display_name=request.user_id,
                role=user_pb2.ROLE_ADMIN,
            ),
            password_hash=await passwords.hash_password(request.password),
        )
        try:
            created = await self._d.metadata.CreateUser(
                metadata_pb2.CreateUserRequest(user=record, only_if_no_users=True),
                timeout=remaining(context, self._timeout_s),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise failed_precondition(
                    "an admin exists already; the bootstrap token is spent", "bootstrap_token"
                ) from exc
            raise
        log.info("bootstrap admin %s created", request.user_id)
        return created.user.user

    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> auth_pb2.AuthTokens:
        violations = FieldViolations()
        if not request.user_id:
            violations.add("user_id", "required")
        if not request.password:
            violations.add("password", "required")
        violations.raise_if_any()
        stored: metadata_pb2.UserRecord | None = None
        try:
            stored = (
                await self._d.metadata.GetUser(
                    metadata_pb2.GetUserRequest(user_id=request.user_id),
                    timeout=remaining(context, self._timeout_s),
                )
            ).user
        except grpc.aio.AioRpcError as exc:
            # An unknown user and a bad id look the same as a wrong password.
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise
        ok = await passwords.verify_password(
            stored.password_hash if stored else None, request.password
        )
        if stored is None or not ok:
            raise unauthenticated(WRONG_LOGIN, "INVALID_CREDENTIAL")
        session_id = str(uuid.uuid4())
        refresh = credentials.new_refresh_token()
        await self._d.metadata.CreateRefreshToken(
            metadata_pb2.CreateRefreshTokenRequest(
                token_hash=credentials.sha256(refresh),
                family_id=session_id,
                user_id=request.user_id,
                expire_time=_expiry(self._refresh_ttl_s),
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return self._issue(request.user_id, stored.token_version, session_id, refresh)

    async def RefreshToken(
        self, request: auth_pb2.RefreshTokenRequest, context: Context
    ) -> auth_pb2.AuthTokens:
        violations = FieldViolations()
        if not request.refresh_token:
            violations.add("refresh_token", "required")
        violations.raise_if_any()
        successor = credentials.new_refresh_token()
        rotated = await self._d.metadata.RotateRefreshToken(
            metadata_pb2.RotateRefreshTokenRequest(
                token_hash=credentials.sha256(request.refresh_token),
                new_token_hash=credentials.sha256(successor),
                new_expire_time=_expiry(self._refresh_ttl_s),
            ),
            timeout=remaining(context, self._timeout_s),
        )
        if rotated.result == metadata_pb2.ROTATE_RESULT_REUSED:
            log.warning("refresh token reuse for user %s: sign-in revoked", rotated.user_id)
            # The revoked sign-in's access tokens stop working on the next call.
            self._principals.clear()
            raise unauthenticated(
                "refresh token already used: the sign-in is revoked, sign in again",
                "REFRESH_TOKEN_REUSED",
            )
        if rotated.result == metadata_pb2.ROTATE_RESULT_EXPIRED:
            raise unauthenticated("refresh token expired; sign in again", "CREDENTIAL_EXPIRED")
        if rotated.result != metadata_pb2.ROTATE_RESULT_ROTATED:
            raise unauthenticated("invalid refresh token", "INVALID_CREDENTIAL")
        user = (
            await self._d.metadata.GetUser(
                metadata_pb2.GetUserRequest(user_id=rotated.user_id),
                timeout=remaining(context, self._timeout_s),
            )
        ).user
        return self._issue(rotated.user_id, user.token_version, rotated.family_id, successor)

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Context) -> empty_pb2.Empty:
        violations = FieldViolations()
        if not request.refresh_token:
            violations.add("refresh_token", "required")
        violations.raise_if_any()
        revoked = await self._d.metadata.RevokeRefreshToken(
            metadata_pb2.RevokeRefreshTokenRequest(
                token_hash=credentials.sha256(request.refresh_token)
            ),
            timeout=remaining(context, self._timeout_s),
        )
        if not revoked.found or revoked.user_id != principal.current().user_id:
            violations.add("refresh_token", "not a refresh token of the caller")
        violations.raise_if_any()
        return empty_pb2.Empty()

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: Context
    ) -> empty_pb2.Empty:
        violations = FieldViolations()
        if not request.current_password:
            violations.add("current_password", "required")
        passwords.check_new_password(request.new_password, "new_password", violations)
        violations.raise_if_any()
        user_id = principal.current().user_id
        stored = (
            await self._d.metadata.GetUser(
                metadata_pb2.GetUserRequest(user_id=user_id),
                timeout=remaining(context, self._timeout_s),
            )
        ).user
        if not await passwords.verify_password(stored.password_hash, request.current_password):
            violations.add("current_password", "does not match")
            violations.raise_if_any()
        await self._d.metadata.SetPassword(
            metadata_pb2.SetPasswordRequest(
                user_id=user_id,
                password_hash=await passwords.hash_password(request.new_password),
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return empty_pb2.Empty()

    async def GetCurrentUser(
        self, request: auth_pb2.GetCurrentUserRequest, context: Context
    ) -> user_pb2.User:
        response = await self._d.metadata.GetUser(
            metadata_pb2.GetUserRequest(user_id=principal.current().user_id),
            timeout=remaining(context, self._timeout_s),
        )
        return response.user.user
