"""Chunking: a document's text cut into token-counted chunks.

The tokenizer runs in the embedder (`Tokenize`), which hands back each token's
character span in the text (special tokens excluded). Every strategy cuts
between tokens: a chunk is the text from its first token's start to its last
token's end, so `chunk.text == text[chunk.start:chunk.end]`, and its
`token_count` is the model's own count of the tokens in it (never an
estimate). A text without tokens has no chunks.

Strategies (see each module):

- `fixed` (fixed.py): windows of `chunk_tokens` tokens with `overlap_tokens`
  shared, blind to the text.
- `recursive` (recursive.py), the default: chunks of at most `chunk_tokens`
  ending at the best boundary that fits (paragraph, line, sentence, word,
  token), with up to `overlap_tokens` shared from a sentence or word start.
- `markdown` (markdown.py): sections by headings, never crossed; `recursive`
  within each; every chunk carries its heading path.
- `semantic` (semantic.py): cut where the embeddings of neighbouring sentences
  drift apart; the only async one, as it embeds.

`split` runs the synchronous strategies (pure, CPU-bound: run it off the event
loop); `split_semantic` the semantic one. Both accept caller-given sections
(`boundaries`, character offsets where a section starts, and optionally a
heading for each), which no chunk crosses, for documents whose extractor knows
their structure (DOCX headings).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from services.indexer.chunking.base import Chunk, Document, Section, Spans, TokenSpans, to_chunks
from services.indexer.chunking.fixed import chunk_text, window_ranges
from services.indexer.chunking.markdown import markdown_sections
from services.indexer.chunking.recursive import recursive_ranges
from services.indexer.chunking.semantic import Embed, semantic_ranges
from services.indexer.chunking.sentences import split_sentences

__all__ = [
    "DEFAULT_STRATEGY",
    "Chunk",
    "ChunkingSpec",
    "Embed",
    "Spans",
    "Strategy",
    "TokenSpans",
    "chunk_text",
    "split",
    "split_semantic",
    "split_sentences",
]


class Strategy(enum.Enum):
    FIXED = "fixed"
    RECURSIVE = "recursive"
    MARKDOWN = "markdown"
    SEMANTIC = "semantic"


DEFAULT_STRATEGY = Strategy.RECURSIVE  # for new collections


@dataclass(frozen=True)
class ChunkingSpec:
    """How to chunk; checked on construction (ValueError naming the field)."""

    strategy: Strategy
    chunk_tokens: int  # hard maximum of tokens in a chunk
    overlap_tokens: int  # most tokens a chunk shares with the one before
    semantic_percentile: float = 90.0  # cut at distances above this percentile
    min_chunk_tokens: int = 16  # semantic: smaller groups join a neighbour (capped at chunk_tokens)
    semantic_buffer: int = 1  # semantic: sentences embedded with each, either side

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, Strategy):
            raise ValueError(f"strategy: {self.strategy!r} is not a Strategy")
        if self.chunk_tokens < 1:
            raise ValueError(f"chunk_tokens: must be at least 1, not {self.chunk_tokens}")
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens: must be at least 0 and less than chunk_tokens "
                f"({self.chunk_tokens}), not {self.overlap_tokens}"
            )
        if not 0 < self.semantic_percentile < 100:
            raise ValueError(
                f"semantic_percentile: must be above 0 and below 100, "
                f"not {self.semantic_percentile}"
            )
        if self.min_chunk_tokens < 0:
            raise ValueError(f"min_chunk_tokens: must be at least 0, not {self.min_chunk_tokens}")
        if self.semantic_buffer < 0:
            raise ValueError(f"semantic_buffer: must be at least 0, not {self.semantic_buffer}")


def _sections(
    document: Document, boundaries: Sequence[int], headings: Sequence[str], markdown: bool
) -> list[Section]:
    if boundaries or headings:
        return document.sections_at(boundaries, headings)
    return markdown_sections(document) if markdown else document.whole()


def split(
    text: str,
    spans: Spans,
    spec: ChunkingSpec,
    *,
    boundaries: Sequence[int] = (),
    headings: Sequence[str] = (),
) -> list[Chunk]:
    """Chunks of `text` by a synchronous strategy (all but semantic).

    `boundaries`: character offsets, ascending, where caller-known sections
    start; no chunk crosses one. `headings`: each section's heading (path), or
    empty. Given boundaries replace the Markdown strategy's own heading parse.
    Raises ValueError for spans that do not fit the text or are out of order.
    """
    if spec.strategy is Strategy.SEMANTIC:
        raise ValueError("strategy: semantic chunking embeds, so it is async: use split_semantic")
    document = Document(text, spans)
    sections = _sections(document, boundaries, headings, spec.strategy is Strategy.MARKDOWN)
    ranges: list[tuple[int, int, str]] = []
    for section in sections:
        if spec.strategy is Strategy.FIXED:
            found = window_ranges(
                section.first, section.stop, spec.chunk_tokens, spec.overlap_tokens
            )
        else:
            found = recursive_ranges(
                document, section.first, section.stop, spec.chunk_tokens, spec.overlap_tokens
            )
        ranges.extend((first, stop, section.heading) for first, stop in found)
    return to_chunks(document, ranges)


async def split_semantic(
    text: str,
    spans: Spans,
    spec: ChunkingSpec,
    embed: Embed,
    *,
    boundaries: Sequence[int] = (),
    headings: Sequence[str] = (),
    batch_size: int = 64,
) -> list[Chunk]:
    """Chunks of `text` by the semantic strategy.

    `embed` maps texts to vectors (one per text, in order); it is called with
    at most `batch_size` texts at a time, one call after another. The CPU work
    runs in a worker thread. `boundaries`, `headings`: as for `split`.
    """
    if spec.strategy is not Strategy.SEMANTIC:
        raise ValueError(f"strategy: split_semantic needs semantic, not {spec.strategy.value}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, not {batch_size}")
    document = Document(text, spans)
    sections = _sections(document, boundaries, headings, markdown=False)
    if not sections:
        return []
    ranges = await semantic_ranges(
        document,
        sections,
        embed,
        chunk_tokens=spec.chunk_tokens,
        overlap_tokens=spec.overlap_tokens,
        percentile_q=spec.semantic_percentile,
        min_chunk_tokens=spec.min_chunk_tokens,
        buffer=spec.semantic_buffer,
        batch_size=batch_size,
    )
    return to_chunks(document, ranges)
