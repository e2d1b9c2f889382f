from __future__ import annotations

import re

import pytest

from services.indexer.chunking import (
    DEFAULT_STRATEGY,
    Chunk,
    ChunkingSpec,
    Strategy,
    TokenSpans,
    chunk_text,
    split,
)


def spans(text: str) -> tuple[list[int], list[int]]:
    matches = list(re.finditer(r"\S+", text))
    return [m.start() for m in matches], [m.end() for m in matches]


TEXT = "one two  three\nfour five six seven"  # 7 tokens, uneven spacing


def test_windows_with_overlap_cover_every_token_in_order() -> None:
    starts, ends = spans(TEXT)
    chunks = chunk_text(TEXT, starts, ends, chunk_tokens=3, overlap_tokens=1)
    assert [c.text for c in chunks] == ["one two  three", "three\nfour five", "five six seven"]
    assert [c.token_count for c in chunks] == [3, 3, 3]
    assert [c.index for c in chunks] == [0, 1, 2]


def test_offsets_reproduce_the_text() -> None:
    starts, ends = spans(TEXT)
    for chunk in chunk_text(TEXT, starts, ends, chunk_tokens=2, overlap_tokens=0):
        assert TEXT[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()


def test_last_window_is_shorter_and_ends_at_the_last_token() -> None:
    starts, ends = spans(TEXT)
    chunks = chunk_text(TEXT, starts, ends, chunk_tokens=4, overlap_tokens=0)
    assert [c.token_count for c in chunks] == [4, 3]
    assert chunks[-1].end == len(TEXT)
    assert chunks[-1].text == "five six seven"


def test_no_window_only_repeats_overlap() -> None:
    # 5 tokens, 3 per chunk, overlap 1: windows 0-2, 2-4; no third window of token 4 alone.
    text = "a b c d e"
    starts, ends = spans(text)
    chunks = chunk_text(text, starts, ends, chunk_tokens=3, overlap_tokens=1)
    assert [c.text for c in chunks] == ["a b c", "c d e"]


def test_text_shorter_than_a_chunk_is_one_chunk() -> None:
    text = "  just three words  "
    starts, ends = spans(text)
    chunks = chunk_text(text, starts, ends, chunk_tokens=512, overlap_tokens=64)
    assert len(chunks) == 1
    assert chunks[0].text == "just three words"
    assert (chunks[0].start, chunks[0].end) == (2, 18)


def test_no_tokens_no_chunks() -> None:
    assert chunk_text("   \n", [], [], chunk_tokens=8, overlap_tokens=2) == []


def test_one_token_chunks_with_subword_offsets() -> None:
    # Sub-word tokens share a word: "unbelievable" as un|believ|able.
    text = "unbelievable!"
    chunks = chunk_text(text, [0, 2, 8, 12], [2, 8, 12, 13], chunk_tokens=1, overlap_tokens=0)
    assert [c.text for c in chunks] == ["un", "believ", "able", "!"]


def test_non_ascii_offsets_are_character_offsets() -> None:
    text = "café über naïve"
    starts, ends = spans(text)
    chunks = chunk_text(text, starts, ends, chunk_tokens=2, overlap_tokens=1)
    assert [c.text for c in chunks] == ["café über", "über naïve"]


@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), [(0, 0), (4, 4), (4, -1)])
def test_bad_sizes_are_refused(chunk_tokens: int, overlap_tokens: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("a b", [0, 2], [1, 3], chunk_tokens, overlap_tokens)


def test_offsets_outside_the_text_are_refused() -> None:
    with pytest.raises(ValueError):
        chunk_text("ab", [0], [5], chunk_tokens=1, overlap_tokens=0)


# The package around chunk_text: every strategy through `split`.


def token_spans(text: str) -> TokenSpans:
    starts, ends = spans(text)
    return TokenSpans(starts, ends)


def test_chunks_without_a_heading_have_an_empty_one() -> None:
    assert Chunk(index=0, text="a", start=0, end=1, token_count=1).heading == ""


def test_split_fixed_is_chunk_text() -> None:
    starts, ends = spans(TEXT)
    chosen = ChunkingSpec(Strategy.FIXED, chunk_tokens=3, overlap_tokens=1)
    assert split(TEXT, token_spans(TEXT), chosen) == chunk_text(TEXT, starts, ends, 3, 1)


def test_new_collections_chunk_recursively() -> None:
    assert DEFAULT_STRATEGY is Strategy.RECURSIVE
    assert [Strategy(name) for name in ("fixed", "recursive", "markdown", "semantic")] == list(
        Strategy
    )


def test_recursive_prefers_the_line_break() -> None:
    chosen = ChunkingSpec(Strategy.RECURSIVE, chunk_tokens=5, overlap_tokens=0)
    chunks = split(TEXT, token_spans(TEXT), chosen)
    assert [c.text for c in chunks] == ["one two  three", "four five six seven"]
    assert [c.token_count for c in chunks] == [3, 4]


def test_recursive_overlap_is_whole_words_within_the_limit() -> None:
    text = "a b c d e f g h i j"
    chosen = ChunkingSpec(Strategy.RECURSIVE, chunk_tokens=4, overlap_tokens=2)
    chunks = split(text, token_spans(text), chosen)
    assert [c.text for c in chunks] == ["a b c d", "c d e f", "e f g h", "g h i j"]


def test_markdown_chunks_name_their_section() -> None:
    text = "# Guide\nintro words\n## Setup\nsetup words"
    chosen = ChunkingSpec(Strategy.MARKDOWN, chunk_tokens=50, overlap_tokens=0)
    chunks = split(text, token_spans(text), chosen)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Guide", "# Guide\nintro words"),
        ("Guide > Setup", "## Setup\nsetup words"),
    ]
