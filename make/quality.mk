# Search quality benchmark (bench/quality.py; bench/README.md).
.PHONY: bench-quality

bench-quality:      ## nDCG@10, Recall@100, MRR@10 of every search mode on Cranfield and CISI vs bm25s
	scripts/bootstrap.sh --dev && .venv/bin/python -m bench.quality
