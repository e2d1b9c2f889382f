"""Stopping a supervised child process, the same way for every kind."""

from __future__ import annotations

import signal
import subprocess


def stop_child(
    process: subprocess.Popen[bytes] | None, sig: signal.Signals, timeout_s: float
) -> None:
    """Send `sig` (the child's own graceful stop) and wait; SIGKILL after `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
