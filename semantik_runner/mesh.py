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

import grpc

from semantik.v1 import auth_pb2, auth_pb2_grpc
from semantik_runner import secret_files
from semantik_runner.envoy import EdgeSettings, EnvoyProcess
from semantik_runner.ports import free_port
from semantik_runner.services import ServiceProcess
from semantik_runner.stores import PostgresServer, RedisServer
from servicekit.config import env_int

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
BOOTSTRAP_TOKEN_FILE = "bootstrap-token"
SERVICE_TOKEN_FILE = "service-token"
JWT_KEY_FILE = "jwt-secret-key"
# The source every embedded run registers (an empty folder in the data directory).
DEFAULT_SOURCE = "default"
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class MeshPorts:
    gateway: int = 50051
    embedder: int = 50052
    indexer: int = 50053
    metadata: int = 50054
    envoy: int = 8080
    envoy_admin: int = 9901
    envoy_tls: int = 8443
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
    # Envoy's limits, CORS origins and TLS files; None: EdgeSettings.from_env()
    # (the SEMANTIK_RATE_LIMIT_* etc. variables, production defaults).
    edge: EdgeSettings | None = None

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
        # Internal services answer only callers with this token (servicekit.service_auth).
        self.service_token = (
            self.extra_env.get("SERVICE_TOKEN")
            or secret_files.load_or_create(self.data_dir, SERVICE_TOKEN_FILE)[0]
        )
        common = {
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "SERVICE_TOKEN": self.service_token,
            **self.extra_env,
        }

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
                # Refused to every import, but for its sources/ and uploads/.
                "INDEXER_DATA_DIR": str(self.data_dir),
                **targets,
            },
        )
        # The JWT signing key and the one-time bootstrap token (AuthService.BootstrapAdmin)
        # are made at the first start and kept with the data.
        jwt_key, _ = secret_files.load_or_create(self.data_dir, JWT_KEY_FILE, 48)
        self.bootstrap_token, self.first_start = secret_files.load_or_create(
            self.data_dir, BOOTSTRAP_TOKEN_FILE
        )
        self.gateway = service(
            "gateway",
            p.gateway,
            {
                **targets,
                "JWT_SECRET_KEY": jwt_key,
                "BOOTSTRAP_TOKEN": self.bootstrap_token,
                "GATEWAY_SOURCES": f"{DEFAULT_SOURCE}={self.default_source_dir}",
            },
        )
        self.envoy = EnvoyProcess(
            config_dir=self.data_dir / "envoy",
            listen_port=p.envoy,
            admin_port=p.envoy_admin,
            gateway_port=p.gateway,
            tls_port=p.envoy_tls,
            # Without SEMANTIK_TLS_CERT/KEY: a self-signed localhost certificate, made once.
            dev_cert_dir=self.data_dir / secret_files.SECRETS_DIR,
            settings=self.edge if self.edge is not None else EdgeSettings.from_env(),
        )

    @property
    def default_source_dir(self) -> Path:
        """The folder registered as `sources/default` (made empty at start)."""
        return self.data_dir / "sources" / DEFAULT_SOURCE

    @property
    def services(self) -> list[ServiceProcess]:
        return [self.metadata, self.embedder, self.indexer, self.gateway]

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.ports.gateway}"

    @property
    def json_url(self) -> str:
        return f"http://{HOST}:{self.ports.envoy}"

    @property
    def json_tls_url(self) -> str:
        """The JSON API over TLS (trust `self.envoy.tls_cert` once Envoy started)."""
        return self.envoy.tls_url

    def start(self, timeout_s: float = 180.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.default_source_dir.mkdir(parents=True, exist_ok=True)
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

    def bootstrap_admin(self, user_id: str, password: str) -> str:
        """Creates the first admin with the bootstrap token; returns an access token.

        For tests and benchmarks, which start from an empty data directory.
        """
        with grpc.insecure_channel(self.grpc_target) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            auth.BootstrapAdmin(
                auth_pb2.BootstrapAdminRequest(
                    bootstrap_token=self.bootstrap_token, user_id=user_id, password=password
                ),
                timeout=60,
            )
            tokens = auth.Login(
                auth_pb2.LoginRequest(user_id=user_id, password=password), timeout=60
            )
        access_token: str = tokens.access_token
        return access_token

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
