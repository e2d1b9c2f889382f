"""`fixed`: windows of `chunk_tokens` tokens, each starting
`chunk_tokens - overlap_tokens` tokens after the one before.

Blind to the text: a window may start or end mid-word (at a sub-word token).
The last window ends at the last token, so it may be shorter; no window is
only the overlap of the one before.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.indexer.chunking.base import Chunk


def window_ranges(
    first: int, stop: int, chunk_tokens: int, overlap_tokens: int
) -> list[tuple[int, int]]:
    """Token ranges [a, b) of the windows over tokens [first, stop)."""
    stride = chunk_tokens - overlap_tokens
    ranges: list[tuple[int, int]] = []
    a = first
    while a < stop:
        b = min(a + chunk_tokens, stop)
        ranges.append((a, b))
        if b == stop:
            break
        a += stride
    return ranges


def chunk_text(
    text: str,
    starts: Sequence[int],
    ends: Sequence[int],
    chunk_tokens: int,
    overlap_tokens: int,
) -> list[Chunk]:
    """Windows of `chunk_tokens` tokens; each starts `chunk_tokens - overlap_tokens` later.

    The last window ends at the last token, so it may be shorter. A text
    without tokens has no chunks.
    """
    if chunk_tokens < 1:
        raise ValueError("chunk_tokens must be at least 1")
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ValueError("overlap_tokens must be at least 0 and less than chunk_tokens")
    if len(starts) != len(ends):
        raise ValueError("starts and ends differ in length")
    chunks: list[Chunk] = []
    for a, b in window_ranges(0, len(starts), chunk_tokens, overlap_tokens):
        start, end = starts[a], ends[b - 1]
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"token offsets {start}..{end} outside the text")
        chunks.append(
            Chunk(
                index=len(chunks),
                text=text[start:end],
                start=start,
                end=end,
                token_count=b - a,
            )
        )
    return chunks
