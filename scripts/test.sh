#!/usr/bin/env bash
# `make test`: the one test command; .ci/run calls exactly this.
# Lint (ruff, mypy --strict, buf lint + stale generated code, buf breaking)
# and the whole pytest suite on real components. Any failure, and pytest's
# exit 5 (no tests collected), is a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --dev
scripts/os-packages.sh
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== buf"; scripts/proto.sh --check
if git rev-parse --verify -q main > /dev/null && [[ "$(git rev-parse HEAD)" != "$(git rev-parse main)" ]]; then
  scripts/proto-breaking.sh main
fi
echo "== pytest"; .venv/bin/pytest "$@"
