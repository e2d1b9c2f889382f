"""Gateway settings from the environment (see README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.config import env_float, env_str


@dataclass(frozen=True)
class GatewayConfig:
    address: str
    embedder_target: str
    indexer_target: str
    metadata_target: str
    # Bound on a downstream call when the caller set no deadline.
    default_timeout_s: float
    # How often the three downstream health services are checked.
    health_interval_s: float

    @classmethod
    def from_env(cls) -> GatewayConfig:
        return cls(
            address=env_str("GATEWAY_ADDRESS", "127.0.0.1:50051"),
            embedder_target=env_str("EMBEDDER_TARGET", "127.0.0.1:50052"),
            indexer_target=env_str("INDEXER_TARGET", "127.0.0.1:50053"),
            metadata_target=env_str("METADATA_TARGET", "127.0.0.1:50054"),
            default_timeout_s=env_float("GATEWAY_DEFAULT_TIMEOUT_S", 30.0),
            health_interval_s=env_float("GATEWAY_HEALTH_INTERVAL_S", 1.0),
        )
