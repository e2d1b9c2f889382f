"""`recursive`: chunks that end at the best boundary the budget allows.

Each chunk takes as many tokens as fit in `chunk_tokens`, then backs off to
the best boundary among its last half: the last paragraph break (blank line)
there, else the last line break, else the last sentence end. That is the
recursive splitter's order with greedy packing of the pieces of the best
level that fits, bounded below so that a short paragraph before a long one
does not become a chunk of its own. Where the last half has none of these,
the chunk ends at the last paragraph, line or sentence boundary before it
(a short chunk rather than a cut sentence), else at the last whitespace
between words, and as a last resort at the last cut between tokens that
share no character.

Overlap: the next chunk starts before the end of the one before, within its
last `overlap_tokens` tokens: at the earliest sentence (or paragraph, line)
start there, unless a word start comes earlier and the sentence start would
keep under half the overlap; then at that earliest word start. In text
without spaces (CJK, code) it may start at any token; elsewhere, with no
word start in reach, there is no overlap. So at most `overlap_tokens` tokens
are shared, and every chunk has tokens of its own: chunks always move forward.

Boundaries lie between tokens and chunks are token runs, so a chunk never
starts or ends inside whitespace.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_left
from collections.abc import Iterable

from services.indexer.chunking.base import Document
from services.indexer.chunking.sentences import is_sentence_break, sentence_gaps


class Level(enum.IntEnum):
    """Boundary kinds, best first."""

    PARAGRAPH = 0
    LINE = 1
    SENTENCE = 2
    WORD = 3
    TOKEN = 4


_PARAGRAPH = re.compile(r"\n(?:[^\S\n]*\n)+")
_LINE = re.compile(r"[\r\n]+")
_WORD = re.compile(r"\s+")


def level_at(document: Document, index: int) -> Level | None:
    """The kind of boundary between tokens index-1 and index; None where the
    two tokens share characters."""
    gap_start, gap_end = document.ends[index - 1], document.starts[index]
    if gap_end < gap_start:
        return None
    text = document.text
    if gap_end == gap_start:
        return Level.SENTENCE if is_sentence_break(text, gap_start, gap_end) else Level.TOKEN
    gap = text[gap_start:gap_end]
    if "\n" in gap or "\r" in gap:
        return Level.PARAGRAPH if _PARAGRAPH.search(gap) else Level.LINE
    if _WORD.search(gap):
        return Level.SENTENCE if is_sentence_break(text, gap_start, gap_end) else Level.WORD
    return Level.TOKEN


def _last_cut(
    document: Document, separators: Iterable[tuple[int, int]], low: int, limit: int
) -> int | None:
    """The last cut in [low, limit] whose gap holds one of the separators."""
    starts, ends = document.starts, document.ends
    found = None
    for separator_start, separator_end in separators:
        index = bisect_left(starts, separator_end, low, limit + 1)
        if index <= limit and ends[index - 1] <= separator_start:
            found = index
    return found


def _structural_cuts(
    document: Document, low: int, limit: int, *, every: bool = False
) -> list[int | None]:
    """The last paragraph, line and sentence cut in [low, limit] (None: none);
    sentences only where there is no paragraph or line cut, unless `every`."""
    text = document.text
    # From the token before the first cut (a sentence's period is its last
    # character) to one character past the last cut's gap.
    begin, finish = document.starts[low - 1], min(document.starts[limit] + 1, len(text))
    found = [
        _last_cut(
            document, (match.span() for match in pattern.finditer(text, begin, finish)), low, limit
        )
        for pattern in (_PARAGRAPH, _LINE)
    ]
    if every or (found[0] is None and found[1] is None):
        found.append(_last_cut(document, sentence_gaps(text, begin, finish), low, limit))
    return found


def best_cut(document: Document, low: int, fill: int, limit: int) -> int:
    """The cut (index of the first token after it) in [low, limit] at the best
    boundary, the last of its kind: a paragraph, line or sentence boundary in
    [fill, limit], best kind first, else the last such boundary before `fill`,
    else the last word boundary, else the last cut between tokens sharing no
    character. `low` > 0, `limit` < the token count."""
    starts, ends, text = document.starts, document.ends, document.text
    fill = max(low, fill)
    upper = _structural_cuts(document, fill, limit)
    for index in upper:
        if index is not None:
            return index
    if fill > low:
        lower = [
            index
            for index in _structural_cuts(document, low, fill - 1, every=True)
            if index is not None
        ]
        if lower:
            return max(lower)
    for index in range(limit, low - 1, -1):
        if starts[index] > ends[index - 1] and text[ends[index - 1]].isspace():
            return index
    for index in range(limit, low - 1, -1):
        if starts[index] >= ends[index - 1]:
            return index
    return limit


def overlap_start(document: Document, first: int, stop: int, room: int) -> int:
    """Where the chunk after tokens [first, stop) starts: at most `room`
    tokens before `stop` and after `first`; `stop` when no boundary fits.

    The earliest sentence (paragraph, line) start in the window, unless a
    word start comes before it and it would keep under half of `room`; then
    that earliest word start.
    """
    word = token = stop
    for index in range(max(first + 1, stop - room), stop):
        if word < stop and 2 * (stop - index) < room:
            return word  # any sentence start from here on keeps too little
        level = level_at(document, index)
        if level is None:
            continue
        if level <= Level.SENTENCE:
            return index
        if level is Level.WORD:
            word = min(word, index)
        else:
            token = min(token, index)
    if word < stop:
        return word
    # Mid-word only in text without spaces (CJK, code): elsewhere no overlap beats a fragment.
    if token < stop and not _WORD.search(
        document.text, document.starts[first], document.ends[stop - 1]
    ):
        return token
    return stop


def recursive_ranges(
    document: Document, first: int, stop: int, chunk_tokens: int, overlap_tokens: int
) -> list[tuple[int, int]]:
    """Token ranges [a, b) of the chunks of tokens [first, stop)."""
    ranges: list[tuple[int, int]] = []
    start = done = first  # done: where the chunk before ended
    while start < stop:
        if stop - start <= chunk_tokens:
            ranges.append((start, stop))
            break
        limit = start + chunk_tokens
        end = best_cut(document, done + 1, start + chunk_tokens // 2, limit)
        ranges.append((start, end))
        start = overlap_start(document, start, end, overlap_tokens) if overlap_tokens else end
        done = end
    return ranges
