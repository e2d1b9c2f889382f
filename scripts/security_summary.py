"""Summarize a security test run: `N passed, N failed` from pytest's JUnit XML,
then the `security: ...` report lines pytest printed (tests/security/conftest.py).

    python scripts/security_summary.py JUNIT_XML PYTEST_OUTPUT
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(junit: Path) -> tuple[int, int, int, int]:
    """(passed, failed, errors, skipped) over every test suite of the file."""
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = failed = errors = skipped = 0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0))
        errors += int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return tests - failed - errors - skipped, failed, errors, skipped


def main(argv: list[str]) -> int:
    junit, output = Path(argv[1]), Path(argv[2])
    if junit.is_file():
        passed, failed, errors, skipped = counts(junit)
        line = f"{passed} passed, {failed + errors} failed"
        if skipped:
            line += f", {skipped} skipped"
        print(line)
    else:
        print("0 passed, 0 failed (pytest wrote no report)")
    if output.is_file():
        for text in output.read_text(encoding="utf-8", errors="replace").splitlines():
            if text.startswith("security:"):
                print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
