"""What every strategy shares: the chunk, the token spans, sections.

Strategies work in token-index space. A chunk is a run of consecutive tokens
[first, stop); its text is the document from the first token's start to the
last token's end. So a chunk's text is an exact slice of the document, never
starts or ends inside whitespace (tokens carry none), and its token count is
`stop - first`, the model's own count.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Protocol


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int  # character offset of the first token, inclusive
    end: int  # character offset after the last token, exclusive
    token_count: int
    heading: str = ""  # the section's heading path, e.g. "Intro > Install"; "" when none


@dataclass(frozen=True)
class TokenSpans:
    """Character spans of a text's tokens, special tokens excluded."""

    starts: Sequence[int]
    ends: Sequence[int]


class Spans(Protocol):
    """Anything with token starts and ends: `TokenSpans`, or the ingest's own."""

    @property
    def starts(self) -> Sequence[int]: ...

    @property
    def ends(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class Section:
    """Tokens [first, stop) of one section and its heading path."""

    first: int
    stop: int
    heading: str = ""


class Document:
    """A text and its validated token spans, with lookups by bisection."""

    __slots__ = ("ends", "starts", "text")

    def __init__(self, text: str, spans: Spans) -> None:
        starts, ends = list(spans.starts), list(spans.ends)
        if len(starts) != len(ends):
            raise ValueError("token starts and ends differ in length")
        # Checked in C (map, all); the loop below only names the culprit.
        if not (
            all(map(operator.le, starts, ends))
            and all(map(operator.le, starts, islice(starts, 1, None)))
            and all(map(operator.le, ends, islice(ends, 1, None)))
            and (not starts or (starts[0] >= 0 and ends[-1] <= len(text)))
        ):
            previous_start = previous_end = 0
            for start, end in zip(starts, ends, strict=True):
                if not 0 <= start <= end <= len(text):
                    raise ValueError(f"token offsets {start}..{end} outside the text")
                if start < previous_start or end < previous_end:
                    raise ValueError(f"token offsets {start}..{end} out of order")
                previous_start, previous_end = start, end
        self.text = text
        self.starts = starts
        self.ends = ends

    @property
    def count(self) -> int:
        return len(self.starts)

    def token_at(self, offset: int, first: int = 0, stop: int | None = None) -> int:
        """Index of the first token starting at or after character `offset`."""
        return bisect_left(self.starts, offset, first, self.count if stop is None else stop)

    def clean_cut(self, index: int) -> bool:
        """Whether tokens index-1 and index share no character (a cut there
        gives chunks whose texts do not overlap)."""
        return self.ends[index - 1] <= self.starts[index]

    def slice(self, first: int, stop: int) -> str:
        return self.text[self.starts[first] : self.ends[stop - 1]]

    def whole(self) -> list[Section]:
        return [Section(0, self.count)] if self.count else []

    def sections_at(self, boundaries: Sequence[int], headings: Sequence[str]) -> list[Section]:
        """Sections that start at the caller's character offsets.

        Text before the first boundary is a section without a heading.
        Sections without tokens are dropped.
        """
        if headings and len(headings) != len(boundaries):
            raise ValueError(f"headings: {len(headings)} given for {len(boundaries)} boundaries")
        previous = 0
        for offset in boundaries:
            if not 0 <= offset <= len(self.text):
                raise ValueError(f"boundaries: offset {offset} outside the text")
            if offset < previous:
                raise ValueError("boundaries: offsets must be in ascending order")
            previous = offset
        firsts = [0, *(self.token_at(offset) for offset in boundaries)]
        names = ["", *(headings or [""] * len(boundaries))]
        stops = [*firsts[1:], self.count]
        return [
            Section(first, stop, name)
            for first, stop, name in zip(firsts, stops, names, strict=True)
            if first < stop
        ]


def to_chunks(document: Document, ranges: Sequence[tuple[int, int, str]]) -> list[Chunk]:
    """Chunks of token ranges (first, stop, heading), numbered in order."""
    chunks: list[Chunk] = []
    for first, stop, heading in ranges:
        assert first < stop, (first, stop)
        start, end = document.starts[first], document.ends[stop - 1]
        chunks.append(
            Chunk(
                index=len(chunks),
                text=document.text[start:end],
                start=start,
                end=end,
                token_count=stop - first,
                heading=heading,
            )
        )
    return chunks
