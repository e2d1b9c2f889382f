"""Where the query's terms occur in a chunk, and a snippet around them.

Terms come from the same analyser as the sparse index (textkit), so a
highlighted word is one that BM25 matched: "Flows" in the text lights up for
the query "flow".
"""

from __future__ import annotations

from collections.abc import Sequence

from textkit.analyzer import analyze

SNIPPET_CHARS = 240


def query_terms(query: str) -> frozenset[str]:
    return frozenset(token.term for token in analyze(query))


def find(text: str, terms: frozenset[str]) -> list[tuple[int, int]]:
    """[start, end) character spans of the text's tokens whose term is a query term."""
    if not terms:
        return []
    return [(token.start, token.end) for token in analyze(text) if token.term in terms]


def snippet(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """About SNIPPET_CHARS of `text`, around the window holding the most matches."""
    if len(text) <= SNIPPET_CHARS:
        return text.strip()
    start = 0
    if spans:
        best, best_count = spans[0][0], 0
        for first, _ in spans:
            count = sum(
                1 for begin, end in spans if first <= begin and end <= first + SNIPPET_CHARS
            )
            if count > best_count:
                best, best_count = first, count
        start = max(0, best - SNIPPET_CHARS // 4)
    end = min(len(text), start + SNIPPET_CHARS)
    start = max(0, end - SNIPPET_CHARS)
    # Whole words at both ends.
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    if end < len(text):
        space = text.rfind(" ", end - 30, end)
        end = space if space > start else end
    prefix = "... " if start > 0 else ""
    suffix = " ..." if end < len(text) else ""
    return f"{prefix}{' '.join(text[start:end].split())}{suffix}"
