# Semantik. `make run` runs the product; `make test` runs every check.
.PHONY: run test env proto proto-check proto-breaking lint format bench-search

run:            ## the whole product on this machine (embedded stores, no containers)
	scripts/run.sh

test:           ## lint, type checks, contracts and the full test suite (what CI runs)
	scripts/test.sh

env:            ## create or refresh .venv from the exact pins (dev tools included)
	scripts/bootstrap.sh --dev

proto:          ## buf lint, then regenerate gen/python and gen/envoy/api.binpb
	scripts/proto.sh

proto-check:    ## fail if gen/ is stale
	scripts/proto.sh --check

proto-breaking: ## buf breaking against main
	scripts/proto-breaking.sh main

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

format:
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

bench-search:   ## index Cranfield, run its 225 queries over JSON and gRPC
	scripts/bootstrap.sh --dev && .venv/bin/python -m bench.search

# Targets owned by one service or benchmark live beside it in make/*.mk.
-include make/*.mk
