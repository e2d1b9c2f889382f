"""Settings of the metadata service, from environment variables.

The pool settings use SQLAlchemy's names (what operators know) and map onto
asyncpg's pool, whose model differs; see README "Connection pool".
"""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.config import ConfigError, env_bool, env_float, env_int, env_str


@dataclass(frozen=True)
class MetadataConfig:
    address: str
    database_url: str
    # DB_POOL_SIZE + DB_MAX_OVERFLOW is asyncpg's max_size: the most
    # connections open at once. Connections above DB_POOL_SIZE are closed
    # again after OVERFLOW_IDLE_S idle (asyncpg's max_inactive_connection_lifetime).
    pool_size: int
    max_overflow: int
    # asyncpg's min_size: connections opened at start and kept.
    pool_min_size: int
    # Longest wait for a free pooled connection before answering UNAVAILABLE.
    pool_timeout_s: float
    # Connections older than this are closed and reopened (0: never).
    pool_recycle_s: float
    # Check a connection with a round trip before handing it out.
    pool_pre_ping: bool
    # Bound on one SQL command when the caller sent no deadline; also the
    # server-side statement_timeout, a backstop should the client vanish.
    command_timeout_s: float

    @property
    def pool_max_size(self) -> int:
        return self.pool_size + self.max_overflow

    @classmethod
    def from_env(cls) -> MetadataConfig:
        config = cls(
            address=env_str("METADATA_ADDRESS", "127.0.0.1:50054"),
            database_url=env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/semantik"),
            pool_size=env_int("DB_POOL_SIZE", 20),
            max_overflow=env_int("DB_MAX_OVERFLOW", 0),
            pool_min_size=env_int("DB_POOL_MIN_SIZE", 1),
            pool_timeout_s=env_float("DB_POOL_TIMEOUT", 30.0),
            pool_recycle_s=env_float("DB_POOL_RECYCLE", 3600.0),
            pool_pre_ping=env_bool("DB_POOL_PRE_PING", False),
            command_timeout_s=env_float("DB_COMMAND_TIMEOUT", 30.0),
        )
        config.validate()
        return config

    def validate(self) -> None:
        if self.pool_size < 1:
            raise ConfigError(f"DB_POOL_SIZE must be at least 1, got {self.pool_size}")
        if self.max_overflow < 0:
            raise ConfigError(f"DB_MAX_OVERFLOW must not be negative, got {self.max_overflow}")
        if not 0 <= self.pool_min_size <= self.pool_size:
            raise ConfigError(
                f"DB_POOL_MIN_SIZE must be between 0 and DB_POOL_SIZE, got {self.pool_min_size}"
            )
        if self.pool_timeout_s <= 0:
            raise ConfigError(f"DB_POOL_TIMEOUT must be positive, got {self.pool_timeout_s}")
        if self.pool_recycle_s < 0:
            raise ConfigError(f"DB_POOL_RECYCLE must not be negative, got {self.pool_recycle_s}")
        if self.command_timeout_s <= 0:
            raise ConfigError(f"DB_COMMAND_TIMEOUT must be positive, got {self.command_timeout_s}")
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must be a postgresql:// URL")
