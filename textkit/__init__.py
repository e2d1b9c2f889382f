"""Text analysis shared by the indexer, the gateway and the benchmarks.

- `analyzer`: the English BM25 analyser (folding, stop words, Snowball
  stemming, offsets into the original text) and the stable term hash that
  turns terms into sparse-vector indices.
"""

from textkit.analyzer import STOP_WORDS, Token, analyze, fold, term_frequencies, term_index, terms

__all__ = ["STOP_WORDS", "Token", "analyze", "fold", "term_frequencies", "term_index", "terms"]
