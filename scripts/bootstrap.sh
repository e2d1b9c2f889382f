#!/usr/bin/env bash
# Creates or refreshes .venv from the exact pins in requirements/*.txt.
# Usage: scripts/bootstrap.sh [--dev]
# Re-runs are cheap: nothing is installed while the pins are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

files=(requirements/runtime.txt)
[[ "${1:-}" == "--dev" ]] && files+=(requirements/dev.txt)

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi

stamp=.venv/.semantik-installed
want=$(cat "${files[@]}" pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f $stamp ]] && grep -qx "$want" "$stamp"; then
  exit 0
fi

echo "bootstrap: installing ${files[*]} (first run takes a few minutes)"
# uv resolves and installs far faster than pip; it does not read pip's
# configuration, so a local wheel folder (PIP_FIND_LINKS) is passed on.
.venv/bin/python -m pip install -q --disable-pip-version-check "uv==0.13.9"
find_links=()
[[ -n "${PIP_FIND_LINKS:-}" ]] && find_links=(--find-links "$PIP_FIND_LINKS")
args=()
for f in "${files[@]}"; do args+=(-r "$f"); done
.venv/bin/uv pip install -q --python .venv/bin/python "${find_links[@]}" "${args[@]}"
.venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
echo "$want" > "$stamp"
