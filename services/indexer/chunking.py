"""Token-counted chunking with overlap, from the embedder's token offsets.

Pure: the tokenizer runs in the embedder (`Tokenize`), which hands back each
token's character span in the text (special tokens excluded). A chunk is the
text from its first token's start to its last token's end, so chunk texts are
exact slices of the document and their offsets locate them in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int  # character offset of the first token, inclusive
    end: int  # character offset after the last token, exclusive
    token_count: int


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
    count = len(starts)
    stride = chunk_tokens - overlap_tokens
    chunks: list[Chunk] = []
    first = 0
    while first < count:
        last = min(first + chunk_tokens, count) - 1
        start, end = starts[first], ends[last]
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"token offsets {start}..{end} outside the text")
        chunks.append(
            Chunk(
                index=len(chunks),
                text=text[start:end],
                start=start,
                end=end,
                token_count=last - first + 1,
            )
        )
        if last == count - 1:
            break
        first += stride
    return chunks
