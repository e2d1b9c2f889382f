# Embedder benchmarks (bench/embedder.py, bench/embedder_gpu.py; bench/README.md).
.PHONY: bench-embedder bench-embedder-gpu

bench-embedder:     ## CPU texts/s: in-process sentence-transformers vs our gRPC vs infinity-emb
	scripts/bootstrap.sh --dev && scripts/bench-infinity-env.sh && .venv/bin/python -m bench.embedder

bench-embedder-gpu: ## GPU: Qwen3-Embedding-0.6B-shaped bf16 tokens/s and fraction of matmul peak
	scripts/bootstrap.sh --dev && .venv/bin/python -m bench.embedder_gpu
