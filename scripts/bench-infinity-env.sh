#!/usr/bin/env bash
# Creates or refreshes .venv-infinity, the virtual environment of infinity-emb,
# the peer server that `make bench-embedder` measures against. It is separate
# from .venv because infinity-emb 0.0.78 pins older sentence-transformers
# (3.4), transformers (4.57) and numpy (1.26) than Semantik runs.
# Usage: scripts/bench-infinity-env.sh      (re-runs are cheap while pins are unchanged)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-infinity
pins=requirements/bench-infinity.txt
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [[ ! -x $venv/bin/python ]]; then
  echo "bench-infinity-env: creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi

stamp=$venv/.semantik-installed
want=$(sha256sum "$pins" | cut -d' ' -f1)
if [[ -f $stamp ]] && grep -qx "$want" "$stamp"; then
  exit 0
fi

echo "bench-infinity-env: installing $pins into $venv (first run takes a few minutes)"
# uv: the one in .venv when there is one (scripts/bootstrap.sh puts it there).
uv=.venv/bin/uv
if [[ ! -x $uv ]]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "uv==0.13.9"
  uv=$venv/bin/uv
fi
find_links=()
[[ -n "${PIP_FIND_LINKS:-}" ]] && find_links=(--find-links "$PIP_FIND_LINKS")
"$uv" pip install -q --python "$venv/bin/python" "${find_links[@]}" -r "$pins"
echo "$want" > "$stamp"
