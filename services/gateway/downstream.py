"""Channels and stubs to the three internal services, and their readiness."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2, health_pb2_grpc

from semantik.internal.v1 import embedder_pb2_grpc, indexer_pb2_grpc, metadata_pb2_grpc
from servicekit.channels import open_channel
from services.gateway.config import GatewayConfig


class DownstreamNotReady(RuntimeError):
    """A downstream service does not answer SERVING."""


class Downstreams:
    def __init__(self, config: GatewayConfig) -> None:
        self._channels = {
            "embedder": open_channel(config.embedder_target),
            "indexer": open_channel(config.indexer_target),
            "metadata": open_channel(config.metadata_target),
        }
        self.embedder = embedder_pb2_grpc.EmbedderServiceStub(self._channels["embedder"])
        self.indexer = indexer_pb2_grpc.IndexerServiceStub(self._channels["indexer"])
        self.metadata = metadata_pb2_grpc.MetadataServiceStub(self._channels["metadata"])
        self._health = {
            name: health_pb2_grpc.HealthStub(channel) for name, channel in self._channels.items()
        }

    async def _check_one(self, name: str) -> None:
        try:
            response = await self._health[name].Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        except Exception as exc:
            raise DownstreamNotReady(f"{name}: {exc.__class__.__name__}") from exc
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            raise DownstreamNotReady(f"{name}: not serving")

    async def check_ready(self) -> None:
        """Raises unless embedder, indexer and metadata all answer SERVING."""
        results = await asyncio.gather(
            *(self._check_one(name) for name in self._channels), return_exceptions=True
        )
        failures = [str(result) for result in results if isinstance(result, BaseException)]
        if failures:
            raise DownstreamNotReady("; ".join(failures))

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))
