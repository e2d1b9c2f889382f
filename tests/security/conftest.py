"""Fixtures of the security tests and their session-wide report.

The mesh and its clients are the end-to-end ones. `REPORT` collects counters
(fuzzed requests, matrix cases, ...) that `pytest_terminal_summary` prints as
`security: name=value ...`, which `make test-security` passes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from tests.e2e.conftest import Api, api, api_for, corpus, json_api  # noqa: F401

REPORT: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        counts = " ".join(f"{name}={REPORT[name]}" for name in sorted(REPORT))
        terminalreporter.write_line(f"security: {counts}")


def outcome(
    target: str, credential: str, stub: Callable[[Api], Any], request: Any
) -> tuple[Any, grpc.StatusCode, str]:
    """(response or None, code, details) of one call with `credential`."""
    client = api_for(target, credential)
    try:
        return stub(client)(request, timeout=60), grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        return None, error.code(), error.details()
    finally:
        client.channel.close()
