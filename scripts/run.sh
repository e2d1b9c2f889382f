#!/usr/bin/env bash
# `make run`: create the environment if needed, then run the whole product.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/semantik-run "$@"
