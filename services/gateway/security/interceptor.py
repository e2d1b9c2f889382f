"""The one interceptor that authenticates and authorises every public RPC.

It reads the caller's credential from the metadata (`authorization: Bearer
<access token or API key>` or `x-api-key: <key>`; Envoy passes HTTP headers
on as metadata, so the JSON API is the same), resolves the principal with one
metadata call, applies the RPC's rule from `policy.POLICY`, and runs the
handler with the principal in a context variable. Health and reflection
(other packages) pass untouched.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from semantik.internal.v1 import metadata_pb2, metadata_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import (
    not_found,
    permission_denied,
    unauthenticated,
)
from servicekit.grpc_types import ServicerContext
from servicekit.streams import chained
from services.gateway.security import credentials, principal, source_access
from services.gateway.security.credentials import AccessTokens, InvalidCredential
from services.gateway.security.policy import POLICY, PUBLIC_PACKAGE_PREFIX, Access, Rule
from services.gateway.security.principal import (
    VERB_PERMISSIONS,
    KeyScope,
    Permission,
    Principal,
)
from services.gateway.security.principal_cache import PrincipalCache

Metadata = Sequence[tuple[str, str | bytes]]

CREDENTIALS_REQUIRED = (
    "credentials required: send 'authorization: Bearer <access token or API key>' "
    "or 'x-api-key: <API key>'"
)


def _collection_id(name: str) -> str:
    return name.split("/", 1)[1] if name.startswith("collections/") else ""


class Authenticator:
    """Turns a call's metadata into a Principal, and checks a rule."""

    def __init__(
        self,
        metadata: metadata_pb2_grpc.MetadataServiceStub,
        access_tokens: AccessTokens,
        timeout_s: float,
        cache: PrincipalCache | None = None,
    ) -> None:
        self._metadata = metadata
        self._tokens = access_tokens
        self._timeout_s = timeout_s
        self.cache = cache if cache is not None else PrincipalCache(ttl_s=0)

    @staticmethod
    def _credential(metadata: Metadata) -> tuple[str, str] | None:
        """('key' | 'bearer', value) or None when the call carries none."""
        headers: dict[str, str] = {}
        for key, value in metadata:
            if isinstance(value, str):
                headers[key.lower()] = value
        api_key = headers.get("x-api-key", "").strip()
        authorization = headers.get("authorization", "").strip()
        if api_key and authorization:
            raise unauthenticated("send one credential: 'authorization' or 'x-api-key', not both")
        if api_key:
            return "key", api_key
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise unauthenticated("authorization must be 'Bearer <access token or API key>'")
        if credentials.looks_like_api_key(value):
            return "key", value
        return "bearer", value

    async def _resolve(
        self, request: metadata_pb2.ResolvePrincipalRequest, context: ServicerContext, what: str
    ) -> metadata_pb2.ResolvePrincipalResponse:
        try:
            return await self.cache.get(
                request,
                lambda: self._metadata.ResolvePrincipal(
                    request, timeout=remaining(context, self._timeout_s)
                ),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise unauthenticated(what, "CREDENTIAL_REVOKED") from exc
            raise

    async def principal(self, metadata: Metadata, context: ServicerContext) -> Principal | None:
        found = self._credential(metadata)
        if found is None:
            return None
        kind, value = found
        try:
            if kind == "bearer":
                return await self._from_access_token(value, context)
            return await self._from_api_key(value, context)
        except InvalidCredential as exc:
            raise unauthenticated(str(exc), "INVALID_CREDENTIAL") from exc

    async def _from_access_token(self, token: str, context: ServicerContext) -> Principal:
        claims = self._tokens.verify(token)
        resolved = await self._resolve(
            metadata_pb2.ResolvePrincipalRequest(
                user_id=claims.user_id, session_id=claims.session_id
            ),
            context,
            "the token's user no longer exists",
        )
        if resolved.user.token_version != claims.token_version or resolved.session_revoked:
            raise unauthenticated("access token revoked; sign in again", "CREDENTIAL_REVOKED")
        return Principal(
            user_id=claims.user_id, role=resolved.user.user.role, grants=dict(resolved.grants)
        )

    async def _from_api_key(self, key: str, context: ServicerContext) -> Principal:
        key_id = credentials.api_key_id(key)
        resolved = await self._resolve(
            metadata_pb2.ResolvePrincipalRequest(api_key_id=key_id),
            context,
            "unknown or revoked API key",
        )
        record = resolved.api_key
        if not credentials.same_hash(credentials.sha256(key), record.secret_hash):
            raise unauthenticated("unknown or revoked API key", "INVALID_CREDENTIAL")
        if record.api_key.HasField("expire_time") and record.api_key.expire_time.seconds <= int(
            time.time()
        ):
            raise unauthenticated("API key expired", "CREDENTIAL_EXPIRED")
        scope = KeyScope(
            collection_ids=frozenset(_collection_id(name) for name in record.api_key.collections),
            permissions=frozenset(VERB_PERMISSIONS[v] for v in record.api_key.verbs),
        )
        return Principal(
            user_id=resolved.user.user.name.split("/", 1)[-1],
            role=resolved.user.user.role,
            grants=dict(resolved.grants),
            key=scope,
        )

    async def authorize(
        self, rule: Rule, method: str, request: Any, metadata: Metadata, context: ServicerContext
    ) -> Principal | None:
        if rule.access is Access.PUBLIC:
            return None
        # Malformed resource names are the caller's error whoever calls.
        named = rule.collections(request) if rule.target is not None else []
        caller = await self.principal(metadata, context)
        if caller is None:
            raise unauthenticated(CREDENTIALS_REQUIRED)
        rpc = method.rsplit("/", 1)[-1]
        if rule.access in (Access.USER, Access.ADMIN, Access.SOURCE) and caller.key is not None:
            raise permission_denied(f"API keys cannot call {rpc}; sign in as a user")
        if rule.access is Access.ADMIN and not caller.is_admin:
            raise permission_denied(f"{rpc} needs the admin role")
        if rule.access is Access.CREATE_COLLECTION and not caller.can_create(named[0][1]):
            raise permission_denied(
                f"{rpc}: creating collections needs the admin or editor role"
                + (" and a key with WRITE on that collection" if caller.key else "")
            )
        if rule.access is Access.OPERATION:
            assert rule.target is not None
            name = rule.field_value(request)
            operation = await self._metadata.GetOperation(
                metadata_pb2.GetOperationRequest(name=name),
                timeout=remaining(context, self._timeout_s),
            )
            collection_id = _collection_id(operation.operation.collection)
            if not caller.can(Permission.READ, collection_id):
                raise not_found(rule.target.resource_type, name)
            assert rule.permission is not None
            if not caller.can(rule.permission, collection_id):
                raise permission_denied(
                    f"{rpc} needs {rule.permission.name} on collections/{collection_id}"
                )
        if rule.access is Access.SOURCE:
            assert rule.target is not None and rule.permission is not None
            source_id = named[0][1]
            await source_access.require(
                self._metadata,
                caller,
                f"sources/{source_id}",
                rule.permission,
                timeout_s=remaining(context, self._timeout_s),
                rpc=rpc,
            )
        if rule.access is Access.COLLECTION:
            assert rule.target is not None and rule.permission is not None
            for name, collection_id in named:
                if not caller.can(Permission.READ, collection_id):
                    raise not_found(rule.target.resource_type, name)
                if not caller.can(rule.permission, collection_id):
                    raise permission_denied(
                        f"{rpc} needs {rule.permission.name} on collections/{collection_id}"
                    )
        return caller


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or not method.startswith(PUBLIC_PACKAGE_PREFIX):
            return handler
        rule = POLICY.get(method)
        inner = handler.unary_unary
        metadata: Metadata = tuple(details.invocation_metadata or ())

        async def unary(request: Any, context: ServicerContext) -> Any:
            if rule is None or inner is None:
                raise permission_denied(f"{method} has no access policy")
            caller = await self._auth.authorize(rule, method, request, metadata, context)
            token = principal.set_current(caller)
            try:
                response = await inner(request, context)
            except BaseException:
                # A failed call may have changed access half-way.
                if rule.changes_access:
                    self._auth.cache.clear()
                raise
            finally:
                principal.reset_current(token)
            if rule.changes_access:
                self._auth.cache.clear()
            return response

        inner_stream = handler.unary_stream

        async def streaming(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
            # Authorised once, when the stream opens; a stream changes no access.
            if rule is None or inner_stream is None or rule.changes_access:
                raise permission_denied(f"{method} has no access policy")
            caller = await self._auth.authorize(rule, method, request, metadata, context)
            token = principal.set_current(caller)
            try:
                async for response in inner_stream(request, context):
                    yield response
            finally:
                principal.reset_current(token)

        inner_upload = handler.stream_unary

        async def client_streaming(requests: AsyncIterator[Any], context: ServicerContext) -> Any:
            # Authorised once, on the first message (it names the collection;
            # the handler refuses a later one naming another). An empty stream
            # is judged as an empty message: its missing name is the error.
            if rule is None or inner_upload is None or rule.changes_access:
                raise permission_denied(f"{method} has no access policy")
            stream = aiter(requests)
            first = await anext(stream, None)
            if first is None:
                first = handler.request_deserializer(b"")
            caller = await self._auth.authorize(rule, method, first, metadata, context)
            token = principal.set_current(caller)
            try:
                return await inner_upload(chained(first, stream), context)
            finally:
                principal.reset_current(token)

        kinds = {
            "unary_unary": (grpc.unary_unary_rpc_method_handler, unary),
            "unary_stream": (grpc.unary_stream_rpc_method_handler, streaming),
            "stream_unary": (grpc.stream_unary_rpc_method_handler, client_streaming),
        }
        for kind, (make, wrapped) in kinds.items():
            if getattr(handler, kind) is not None:
                return make(
                    wrapped,
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        # Bidirectional streams: no public RPC is one, and no policy covers them.
        return grpc.stream_stream_rpc_method_handler(
            lambda requests, context: _refused(method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def _refused(method: str) -> AsyncIterator[Any]:
    raise permission_denied(f"{method} has no access policy")
    yield  # an async generator, as a stream handler must be
