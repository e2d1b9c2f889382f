#!/usr/bin/env bash
# `make proto`: lint the contracts and regenerate all generated code:
# Python messages, type stubs and gRPC stubs under gen/python, and the public
# descriptor set for Envoy's transcoder at gen/envoy/api.binpb.
# With --check, regenerates into a scratch copy and fails if gen/ is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=.venv/bin/buf
site=$(.venv/bin/python -c 'import google.api.annotations_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[2])')

# googleapis protos come from the googleapis-common-protos wheel (buf's
# registry is not needed, so this works offline).
rm -rf build/third_party
mkdir -p build/third_party/google/api build/third_party/google/rpc
cp "$site"/google/api/{annotations,http,httpbody,field_behavior,resource,client,launch_stage}.proto \
  build/third_party/google/api/
cp "$site"/google/rpc/{status,error_details,code}.proto build/third_party/google/rpc/

"$buf" lint

generate() {  # $1: output root
  rm -rf "$1/gen/python" "$1/gen/envoy"
  mkdir -p "$1/gen/python" "$1/gen/envoy"
  "$buf" generate --output "$1"
  # error_details.proto too: Envoy renders gRPC errors as JSON only when it
  # knows every detail type (BadRequest, ResourceInfo, ...).
  "$buf" build --path proto/semantik/v1 --path build/third_party/google/rpc/error_details.proto \
    -o "$1/gen/envoy/api.binpb"
}

if [[ "${1:-}" == "--check" ]]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  generate "$scratch"
  if ! diff -r gen "$scratch/gen" > /dev/null; then
    diff -r gen "$scratch/gen" | head -20 || true
    echo "generated code is stale: run 'make proto' and commit gen/" >&2
    exit 1
  fi
  echo "proto: lint clean, gen/ up to date"
else
  generate .
fi
