"""The whole product on one machine: stores, the four services and Envoy.

Used by `semantik-run` (fixed default ports, `./data`) and by the test suite
(free ports, a temporary directory). Start order follows the dependencies;
stop order is the reverse, so nothing loses a store while it still writes.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from semantik_runner.envoy import EnvoyProcess
from semantik_runner.ports import free_port
from semantik_runner.services import ServiceProcess
from semantik_runner.stores import PostgresServer, RedisServer
from servicekit.config import env_int

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class MeshPorts:
    gateway: int = 50051
    embedder: int = 50052
    indexer: int = 50053
    metadata: int = 50054
    envoy: int = 8080
    envoy_admin: int = 9901
    postgres: int = 54329
    redis: int = 63799

    @classmethod
    def free(cls) -> MeshPorts:
        return cls(**{name: free_port() for name in cls.__dataclass_fields__})

    @classmethod
    def from_env(cls) -> MeshPorts:
        """Defaults, each overridable as SEMANTIK_<NAME>_PORT (e.g. SEMANTIK_ENVOY_PORT)."""
        defaults = cls()
        return cls(
            **{
                name: env_int(f"SEMANTIK_{name.upper()}_PORT", getattr(defaults, name))
                for name in cls.__dataclass_fields__
            }
        )


@dataclass
class Mesh:
    data_dir: Path
    ports: MeshPorts = field(default_factory=MeshPorts)
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        logs = self.data_dir / "logs"
        p = self.ports
        self.postgres = PostgresServer(self.data_dir / "postgres", p.postgres)
        self.redis = RedisServer(self.data_dir / "redis", p.redis)
        targets = {
            "EMBEDDER_TARGET": f"{HOST}:{p.embedder}",
            "INDEXER_TARGET": f"{HOST}:{p.indexer}",
            "METADATA_TARGET": f"{HOST}:{p.metadata}",
        }
        common = {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", **self.extra_env}

        def service(name: str, port: int, env: dict[str, str]) -> ServiceProcess:
            address = f"{HOST}:{port}"
            return ServiceProcess(
                name=name,
                env={**common, f"{name.upper()}_ADDRESS": address, **env},
                log_path=logs / f"{name}.log",
                address=address,
            )

        self.metadata = service("metadata", p.metadata, {"DATABASE_URL": self.postgres.url})
        self.embedder = service("embedder", p.embedder, {})
        self.indexer = service(
            "indexer",
            p.indexer,
            {
                "REDIS_URL": self.redis.url,
                "VECTOR_DATA_DIR": str(self.data_dir / "vectors"),
                **targets,
            },
        )
        self.gateway = service("gateway", p.gateway, targets)
        self.envoy = EnvoyProcess(
            config_dir=self.data_dir / "envoy",
            listen_port=p.envoy,
            admin_port=p.envoy_admin,
            gateway_port=p.gateway,
        )

    @property
    def services(self) -> list[ServiceProcess]:
        return [self.metadata, self.embedder, self.indexer, self.gateway]

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.ports.gateway}"

    @property
    def json_url(self) -> str:
        return f"http://{HOST}:{self.ports.envoy}"

    def start(self, timeout_s: float = 180.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                for started in [pool.submit(self.postgres.start), pool.submit(self.redis.start)]:
                    started.result()
            for svc in self.services:
                svc.start()
            self.envoy.start()
            for svc in self.services:
                svc.wait_serving(timeout_s)
            self.envoy.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def failed_child(self) -> str | None:
        """The name of a child that exited by itself, if any."""
        for svc in self.services:
            if svc.exited() is not None:
                return svc.name
        for name, process in (
            ("postgres", self.postgres.process),
            ("redis", self.redis.process),
            ("envoy", self.envoy.process),
        ):
            if process is not None and process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        self.envoy.stop()
        for svc in reversed(self.services):
            svc.stop()
        self.redis.stop()
        self.postgres.stop()
