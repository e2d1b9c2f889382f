"""Rule-based sentence boundaries, shared by `recursive` (its sentence level)
and `semantic` (its units).

A sentence ends at `.`, `!`, `?` or `…` (closing quotes and brackets may
follow) when whitespace comes next and the next word does not start in lower
case; or at the CJK `。！？`, where no space follows. A period does not end a
sentence after a known abbreviation ("e.g.", "Dr.", "etc." is not one), a
single capital (an initial: "J. Smith"), a dotted acronym ("U.S."), or
"No."/"Fig."/... before a number. Decimals ("3.14") and names with dots
("example.com") never qualify: no whitespace follows their dots.

For whole-text splitting (`split_sentences`), blank lines and line breaks
before a Markdown block (heading, list item, quote, table row, code fence)
end sentences too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise

# Lower case, without the final period.
_ABBREVIATION_WORDS = """
    mr mrs ms mx dr prof sr jr st mt rev hon gen col capt lt sgt gov sen rep pres
    vs v cf al approx ca circa dept est inc ltd co corp llc bros
    e.g i.e eg ie viz resp incl excl min max avg
    jan feb mar apr jun jul aug sep sept oct nov dec
    mon tue tues wed thu thur thurs fri sat sun
"""
ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
# Abbreviations only before a number: "No. 5", "Fig. 3", "pp. 10".
_NUMBERED_WORDS = "no nos nr fig figs eq eqs p pp vol vols ch chap sec art ref refs"
NUMBERED = frozenset(_NUMBERED_WORDS.split())

_CLOSERS = "\"')]}»”’」』）"
_OPENERS = "\"'([{«“‘「『（"
_CJK_ENDS = "。！？"
_ENDS = ".!?…"
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # U.S, e.g, i.e, a.m
_LOOKBACK = 40  # characters scanned back for the word before a period
# The lookbehind starts a run of marks only at its first mark: without it a
# long run of periods is rescanned from each of them (quadratic).
_CANDIDATE = re.compile(r"(?<![.!?…])[.!?…]+[\"')\]}»”’]*(?=\s)|[。！？]+[」』”’)）]*")
_SPACE = re.compile(r"\s*")
_BLOCK_BREAK = re.compile(
    r"\n[^\S\n]*\n\s*"  # blank line(s)
    r"|\n(?=[^\S\n]{0,3}(?:#{1,6}\s|[-*+•]\s|\d{1,3}[.)]\s|>|\||```|~~~))"  # before a block
)
_HEADING_LINE = re.compile(r"^[^\S\n]{0,3}#{1,6}[^\S\n][^\n]*\n", re.MULTILINE)


def is_sentence_break(text: str, gap_start: int, gap_end: int) -> bool:
    """Whether a sentence ends at `gap_start` and the next begins at `gap_end`,
    `text[gap_start:gap_end]` being the gap (whitespace, or empty after CJK)."""
    j = gap_start
    while j > 0 and gap_start - j < 4 and text[j - 1] in _CLOSERS:
        j -= 1
    if j == 0:
        return False
    mark = text[j - 1]
    if mark in _CJK_ENDS:
        return True
    if mark not in _ENDS or gap_end <= gap_start or not text[gap_start].isspace():
        return False
    following = text[gap_end] if gap_end < len(text) else ""
    if following.islower():
        return False
    if mark != ".":
        return True
    k = j - 1  # the period; an ellipsis of periods ends a sentence like "…"
    if k > 0 and text[k - 1] == ".":
        return True
    w = k
    while w > 0 and k - w < _LOOKBACK and not text[w - 1].isspace():
        w -= 1
    word = text[w:k].lstrip(_OPENERS)
    lower = word.lower()
    if lower in ABBREVIATIONS:
        return False
    if lower in NUMBERED and following.isdigit():
        return False
    if len(word) == 1 and word.isupper():
        return False
    return not _DOTTED.fullmatch(word)


def sentence_gaps(text: str, pos: int, endpos: int) -> Iterator[tuple[int, int]]:
    """The gaps (start, end) between sentences within text[pos:endpos],
    punctuation rules only (no line rules)."""
    for match in _CANDIDATE.finditer(text, pos, endpos):
        gap_start = match.end()
        space = _SPACE.match(text, gap_start, endpos)
        gap_end = space.end() if space else gap_start
        if gap_end < endpos and is_sentence_break(text, gap_start, gap_end):
            yield gap_start, gap_end


def sentence_starts(text: str) -> list[int]:
    """Sorted character offsets where a sentence starts (after 0): punctuation
    rules plus blank lines, lines before a Markdown block, lines after a heading."""
    cuts = {end for _, end in sentence_gaps(text, 0, len(text))}
    cuts.update(match.end() for match in _BLOCK_BREAK.finditer(text))
    cuts.update(match.end() for match in _HEADING_LINE.finditer(text))
    return sorted(cut for cut in cuts if 0 < cut < len(text))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text`, whitespace trimmed, empty ones left out."""
    bounds = [0, *sentence_starts(text), len(text)]
    spans: list[tuple[int, int]] = []
    for start, end in pairwise(bounds):
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
    return spans
