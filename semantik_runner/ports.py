"""Loopback ports for the embedded run and the tests."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, below the ephemeral range.

    A port the OS hands out for `bind(0)` comes from the ephemeral range, the
    same range outgoing connections take their source ports from: between
    picking it and a server binding it, a client connection elsewhere could
    take it (seen once in CI). Ports below that range are never assigned
    implicitly; each is handed out once per process.
    """
    low, _ = _ephemeral_range()
    first = 10000 if low > 11000 else 1024
    for _ in range(1000):
        port = random.randrange(first, low)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {first}..{low - 1} on {host}")


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f}s")
