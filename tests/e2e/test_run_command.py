"""`semantik-run`: ready, Ctrl-C stops cleanly, the data directory survives."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from semantik_runner.mesh import MeshPorts
from tests.e2e.conftest import CORPUS

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"


def _start(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [str(BIN / "semantik-run"), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            return process, lines
    process.kill()
    raise AssertionError("semantik-run did not become ready:\n" + "".join(lines))


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    return output


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "semantik"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_run_stop_and_restart_keeps_the_data(tmp_path: Path) -> None:
    ports = MeshPorts.free()
    env = {
        **os.environ,
        **{f"SEMANTIK_{name.upper()}_PORT": str(getattr(ports, name)) for name in vars(ports)},
        "SEMANTIK_TARGET": f"127.0.0.1:{ports.gateway}",
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "SEMANTIK_PASSWORD": "first admin password",
    }
    docs = tmp_path / "docs"
    for relative, text in CORPUS.items():
        (docs / relative).parent.mkdir(parents=True, exist_ok=True)
        (docs / relative).write_text(text, encoding="utf-8")
    # Outside pytest's tmp_path: PostgreSQL runs as its own user when we are root.
    data_dir = Path(tempfile.mkdtemp(prefix="semantik-run-"))

    process, lines = _start(data_dir, env)
    try:
        banner = "".join(lines)
        assert f"JSON API (Envoy): http://127.0.0.1:{ports.envoy}" in banner
        assert f"gRPC (gateway):   127.0.0.1:{ports.gateway}" in banner
        # The first start prints the one-time bootstrap command; it makes the admin.
        bootstrap = next(line for line in lines if "semantik bootstrap" in line).split()
        assert bootstrap[:4] == ["semantik", "bootstrap", "--user", "admin"]
        assert "created admin users/admin" in _cli(env, *bootstrap[1:])
        env["SEMANTIK_TOKEN"] = _cli(env, "login", "--user", "admin").strip()
        indexed = _cli(env, "index", str(docs), "--collection", "kept")
        assert "SUCCEEDED" in indexed
    finally:
        output = _stop(process)
    assert "stopped." in output
    # Every child is gone: nothing listens on the gateway port any more.
    assert (
        subprocess.run(
            [sys.executable, "-m", "servicekit.probe", f"127.0.0.1:{ports.gateway}", "-q"],
            check=False,
        ).returncode
        != 0
    )

    process, lines = _start(data_dir, env)
    try:
        # Printed once only; the signing key survived, so the token still works.
        assert "bootstrap" not in "".join(lines)
        found = _cli(env, "search", "satellite orbit speed", "--collection", "kept", "-k", "1")
        assert found.splitlines()[0].rstrip().endswith("space/orbits.txt")
    finally:
        _stop(process)
        shutil.rmtree(data_dir, ignore_errors=True)
