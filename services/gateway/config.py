"""Gateway settings from the environment (see README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.config import env_float, env_int, env_str
from services.gateway import configured_sources

DAY_S = 24 * 3600


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
    # JWT signing keys: one secret, or kid:secret pairs (the first signs).
    jwt_secret_key: str
    access_token_ttl_s: int
    refresh_token_ttl_s: int
    # One-time token for AuthService.BootstrapAdmin; generated when empty.
    bootstrap_token: str
    # How long a resolved caller is reused (0: resolve on every call).
    principal_cache_ttl_s: float
    # SEMANTIK_ENV=production: no generated secrets, refuse to start without them.
    production: bool
    # Sources registered at start (`id=/path,...`; configured_sources.py).
    sources: dict[str, str]

    @classmethod
    def from_env(cls) -> GatewayConfig:
        return cls(
            address=env_str("GATEWAY_ADDRESS", "127.0.0.1:50051"),
            embedder_target=env_str("EMBEDDER_TARGET", "127.0.0.1:50052"),
            indexer_target=env_str("INDEXER_TARGET", "127.0.0.1:50053"),
            metadata_target=env_str("METADATA_TARGET", "127.0.0.1:50054"),
            default_timeout_s=env_float("GATEWAY_DEFAULT_TIMEOUT_S", 30.0),
            health_interval_s=env_float("GATEWAY_HEALTH_INTERVAL_S", 1.0),
            jwt_secret_key=env_str("JWT_SECRET_KEY", ""),
            access_token_ttl_s=env_int("JWT_ACCESS_TTL_S", DAY_S),
            refresh_token_ttl_s=env_int("JWT_REFRESH_TTL_S", 30 * DAY_S),
            bootstrap_token=env_str("BOOTSTRAP_TOKEN", ""),
            principal_cache_ttl_s=env_float("GATEWAY_PRINCIPAL_CACHE_TTL_S", 2.0),
            production=env_str("SEMANTIK_ENV", "development") == "production",
            sources=configured_sources.parse(env_str("GATEWAY_SOURCES", "")),
        )
