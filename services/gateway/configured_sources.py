"""Sources named in configuration (`GATEWAY_SOURCES`), registered at start.

The embedded run names one empty folder under its data directory
(`default=<data>/sources/default`); an operator may list more, e.g.
`shared-docs=/srv/docs,wiki=/srv/wiki`. Each is registered with no owner, so
admins manage it and grant it to users (SourceService.SetSourceGrant). A
source already registered (by id or path) is left as it is; a folder the
indexer refuses is logged and skipped, never registered.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath

import grpc

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import source_pb2
from servicekit.config import ConfigError
from servicekit.errors import FieldViolations
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.imports import resolve_folder, root_refusal

log = logging.getLogger(__name__)
RETRY_S = 1.0
TIMEOUT_S = 5.0


def parse(value: str) -> dict[str, str]:
    """`id=path,id=path` as {id: path}; ConfigError names what is wrong."""
    sources: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        source_id, sep, path = item.partition("=")
        violations = FieldViolations()
        validation.check_resource_id(source_id.strip(), "id", violations)
        if not sep or violations or not posixpath.isabs(path.strip()):
            raise ConfigError(
                f"GATEWAY_SOURCES: {item!r} is not id=/absolute/path "
                f"(ids: {validation.RESOURCE_ID_RULE})"
            )
        sources[source_id.strip()] = path.strip()
    return sources


async def _register_one(downstream: Downstreams, source_id: str, path: str) -> None:
    resolved = await resolve_folder(downstream, path, "", TIMEOUT_S)
    if isinstance(resolved, dict):
        log.error("GATEWAY_SOURCES: %s=%s refused: %s", source_id, path, root_refusal(resolved))
        return
    try:
        await downstream.metadata.CreateSource(
            metadata_pb2.CreateSourceRequest(
                source=source_pb2.Source(
                    name=f"sources/{source_id}", path=resolved.path, display_name=source_id
                )
            ),
            timeout=TIMEOUT_S,
        )
        log.info("registered sources/%s at %s", source_id, resolved.path)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


async def register(downstream: Downstreams, sources: dict[str, str]) -> None:
    """Registers each configured source once the indexer and metadata answer."""
    pending = dict(sources)
    while pending:
        for source_id, path in list(pending.items()):
            try:
                await _register_one(downstream, source_id, path)
            except grpc.aio.AioRpcError as exc:
                log.debug("sources/%s not registered yet: %s", source_id, exc.details())
                continue
            del pending[source_id]
        if pending:
            await asyncio.sleep(RETRY_S)
