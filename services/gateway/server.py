"""Gateway wiring: the public services over the three internal ones, behind
the auth interceptor (security/interceptor.py, rules in security/policy.py)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import grpc

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import (
    api_key_pb2,
    api_key_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    collection_pb2,
    collection_pb2_grpc,
    document_pb2,
    document_pb2_grpc,
    grant_pb2,
    grant_pb2_grpc,
    operation_pb2,
    operation_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
    source_pb2,
    source_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)
from servicekit import service_auth
from servicekit.server import Registration, configure_logging, run_server
from services.gateway import configured_sources
from services.gateway.config import GatewayConfig
from services.gateway.downstream import DownstreamNotReady, Downstreams
from services.gateway.handlers.api_keys import ApiKeyHandler
from services.gateway.handlers.auth import AuthHandler
from services.gateway.handlers.collections import CollectionHandler
from services.gateway.handlers.documents import DocumentHandler
from services.gateway.handlers.grants import GrantHandler
from services.gateway.handlers.operations import OperationHandler
from services.gateway.handlers.search import SearchHandler
from services.gateway.handlers.sources import SourceHandler
from services.gateway.handlers.users import UserHandler
from services.gateway.security.credentials import AccessTokens
from services.gateway.security.interceptor import Authenticator, AuthInterceptor
from services.gateway.security.principal_cache import PrincipalCache
from services.gateway.security.signing_keys import SigningKeys

log = logging.getLogger("services.gateway")


def _registration(
    module: Any, service: str, add: Callable[[Any, grpc.aio.Server], None], handler: Any
) -> Registration:
    return Registration(
        module.DESCRIPTOR.services_by_name[service].full_name,
        lambda server: add(handler, server),
    )


def signing_keys(config: GatewayConfig) -> SigningKeys:
    if config.jwt_secret_key:
        return SigningKeys.parse(config.jwt_secret_key)
    if config.production:
        raise SystemExit("gateway: SEMANTIK_ENV=production needs JWT_SECRET_KEY; refusing to start")
    log.warning("JWT_SECRET_KEY is not set: using a random key; tokens die with this process")
    return SigningKeys.generate()


async def announce_bootstrap_token(downstream: Downstreams, token: str) -> None:
    """Logs a generated bootstrap token once metadata answers and no user exists."""
    while True:
        try:
            users = await downstream.metadata.ListUsers(
                metadata_pb2.ListUsersRequest(page_size=1), timeout=2.0
            )
        except grpc.aio.AioRpcError:
            await asyncio.sleep(1.0)
            continue
        if not users.users:
            log.warning(
                "no users yet: create the first admin with bootstrap token %s "
                "(AuthService.BootstrapAdmin; set BOOTSTRAP_TOKEN to choose it)",
                token,
            )
        return


async def main() -> None:
    configure_logging("gateway")
    # It sends the service token downstream (servicekit.channels): required in production.
    service_auth.require_service_token("gateway")
    config = GatewayConfig.from_env()
    keys = signing_keys(config)
    downstream = Downstreams(config)
    timeout = config.default_timeout_s
    access_tokens = AccessTokens(keys, config.access_token_ttl_s)
    # Hex: a token starting with "-" would read as an option on a command line.
    bootstrap_token = config.bootstrap_token or secrets.token_hex(24)
    # Resolved callers, shared by the interceptor and the handlers that revoke.
    principals = PrincipalCache(config.principal_cache_ttl_s)
    background: set[asyncio.Task[None]] = set()

    def in_background(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        background.add(task)
        task.add_done_callback(background.discard)

    # Ready only once the configured sources are registered, so a client
    # that waited for SERVING finds them.
    sources_registered = asyncio.Event()

    async def register_sources() -> None:
        await configured_sources.register(downstream, config.sources)
        sources_registered.set()

    async def ready() -> None:
        await downstream.check_ready()
        if not sources_registered.is_set():
            raise DownstreamNotReady("configured sources (GATEWAY_SOURCES) not registered yet")

    async def on_start() -> None:
        if not config.bootstrap_token:
            in_background(announce_bootstrap_token(downstream, bootstrap_token))
        in_background(register_sources())

    services = [
        _registration(
            auth_pb2,
            "AuthService",
            auth_pb2_grpc.add_AuthServiceServicer_to_server,
            AuthHandler(
                downstream,
                timeout,
                access_tokens,
                config.refresh_token_ttl_s,
                bootstrap_token,
                principals=principals,
            ),
        ),
        _registration(
            user_pb2,
            "UserService",
            user_pb2_grpc.add_UserServiceServicer_to_server,
            UserHandler(downstream, timeout),
        ),
        _registration(
            api_key_pb2,
            "ApiKeyService",
            api_key_pb2_grpc.add_ApiKeyServiceServicer_to_server,
            ApiKeyHandler(downstream, timeout),
        ),
        _registration(
            grant_pb2,
            "GrantService",
            grant_pb2_grpc.add_GrantServiceServicer_to_server,
            GrantHandler(downstream, timeout),
        ),
        _registration(
            collection_pb2,
            "CollectionService",
            collection_pb2_grpc.add_CollectionServiceServicer_to_server,
            CollectionHandler(downstream, timeout),
        ),
        _registration(
            document_pb2,
            "DocumentService",
            document_pb2_grpc.add_DocumentServiceServicer_to_server,
            DocumentHandler(downstream, timeout),
        ),
        _registration(
            operation_pb2,
            "OperationService",
            operation_pb2_grpc.add_OperationServiceServicer_to_server,
            OperationHandler(downstream, timeout),
        ),
        _registration(
            source_pb2,
            "SourceService",
            source_pb2_grpc.add_SourceServiceServicer_to_server,
            SourceHandler(downstream, timeout),
        ),
        _registration(
            search_pb2,
            "SearchService",
            search_pb2_grpc.add_SearchServiceServicer_to_server,
            SearchHandler(downstream, timeout),
        ),
    ]
    await run_server(
        component="gateway",
        address=config.address,
        services=services,
        readiness_check=ready,
        readiness_interval_s=config.health_interval_s,
        on_start=on_start,
        on_shutdown=downstream.close,
        interceptors=[
            AuthInterceptor(Authenticator(downstream.metadata, access_tokens, timeout, principals))
        ],
    )
