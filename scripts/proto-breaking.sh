#!/usr/bin/env bash
# `make proto-breaking`: buf breaking (FILE rules) of the working tree against
# a git ref (default main). The googleapis module (build/third_party) is not
# in git, so the ref is checked out in a scratch worktree and given this
# checkout's copy; a plain '.git#branch=main' input would lack that module.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:-main}
here=$PWD
[[ -d build/third_party ]] || scripts/proto.sh > /dev/null
base=$(mktemp -d)
trap 'git -C "$here" worktree remove --force "$base" > /dev/null 2>&1 || true; rm -rf "$base"' EXIT
git worktree add -q --detach "$base" "$ref"
mkdir -p "$base/build"
cp -r build/third_party "$base/build/"
(cd "$base" && "$here/.venv/bin/buf" breaking "$here" --against .)
echo "proto: no breaking change against $ref"
