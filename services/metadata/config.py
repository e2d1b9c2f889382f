"""Settings of the metadata service, from environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.config import ConfigError, env_float, env_int, env_str


@dataclass(frozen=True)
class MetadataConfig:
    address: str
    database_url: str
    # asyncpg pool bounds; the pool grows from `pool_min_size` to
    # `pool_size` connections under load.
    pool_size: int
    pool_min_size: int
    # Longest wait for a free pooled connection before answering UNAVAILABLE.
    pool_timeout_s: float
    # Bound on one SQL command when the caller sent no deadline.
    command_timeout_s: float

    @classmethod
    def from_env(cls) -> MetadataConfig:
        config = cls(
            address=env_str("METADATA_ADDRESS", "127.0.0.1:50054"),
            database_url=env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/semantik"),
            pool_size=env_int("DB_POOL_SIZE", 20),
            pool_min_size=env_int("DB_POOL_MIN_SIZE", 1),
            pool_timeout_s=env_float("DB_POOL_TIMEOUT", 30.0),
            command_timeout_s=env_float("DB_COMMAND_TIMEOUT", 30.0),
        )
        config.validate()
        return config

    def validate(self) -> None:
        if self.pool_size < 1:
            raise ConfigError(f"DB_POOL_SIZE must be at least 1, got {self.pool_size}")
        if not 0 <= self.pool_min_size <= self.pool_size:
            raise ConfigError(
                f"DB_POOL_MIN_SIZE must be between 0 and DB_POOL_SIZE, got {self.pool_min_size}"
            )
        if self.pool_timeout_s <= 0:
            raise ConfigError(f"DB_POOL_TIMEOUT must be positive, got {self.pool_timeout_s}")
        if self.command_timeout_s <= 0:
            raise ConfigError(f"DB_COMMAND_TIMEOUT must be positive, got {self.command_timeout_s}")
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must be a postgresql:// URL")
