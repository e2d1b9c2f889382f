"""The four Semantik services as supervised child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from semantik_runner.processes import stop_child


@dataclass
class ServiceProcess:
    """`python -m services.<name>` with its environment and a log file."""

    name: str
    env: dict[str, str]
    log_path: Path
    address: str
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def serving(self, timeout_s: float = 1.0) -> bool:
        """True when its `grpc.health.v1` readiness answers SERVING."""
        with grpc.insecure_channel(self.address) as channel:
            try:
                response = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=timeout_s
                )
            except grpc.RpcError:
                return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    def wait_serving(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.exited()
            if code is not None:
                raise RuntimeError(f"{self.name} exited with {code}; log: {self.log_path}")
            if self.serving():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not SERVING after {timeout_s:.0f}s; log: {self.log_path}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM: the service goes NOT_SERVING, drains, and exits."""
        stop_child(self.process, signal.SIGTERM, timeout_s)
