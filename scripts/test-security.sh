#!/usr/bin/env bash
# `make test-security`: the security tests (service token, credentials, the
# authorization matrix, the fuzzer) on a real mesh, then `N passed, N failed`
# and the security report. The exit status is pytest's: any failure, and
# exit 5 (no tests collected), is a non-zero exit.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --dev || exit $?
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
.venv/bin/pytest tests/security -q --junitxml="$work/junit.xml" "$@" 2>&1 | tee "$work/output.txt"
status=${PIPESTATUS[0]}
echo "== security summary"
.venv/bin/python scripts/security_summary.py "$work/junit.xml" "$work/output.txt"
exit "$status"
