"""Fixtures of the security tests and their session-wide report.

The mesh and its clients are the end-to-end ones. `REPORT` collects counters
(fuzzed requests, matrix cases, ...) that `pytest_terminal_summary` prints as
`security: name=value ...`, which `make test-security` passes on.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import api, corpus, json_api  # noqa: F401

REPORT: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        counts = " ".join(f"{name}={REPORT[name]}" for name in sorted(REPORT))
        terminalreporter.write_line(f"security: {counts}")
