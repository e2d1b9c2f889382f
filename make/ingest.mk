# Ingest throughput benchmark (bench/ingest.py; bench/README.md).
.PHONY: bench-ingest

bench-ingest:       ## end-to-end docs/s, chunks/s on Cranfield and 2,000 mixed files vs the embedder alone
	scripts/bootstrap.sh --dev && .venv/bin/python -m bench.ingest
