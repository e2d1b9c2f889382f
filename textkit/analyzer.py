"""The English BM25 analyser: one definition of a "term" for the whole system.

The indexer runs it on every chunk it writes (sparse vectors) and on the
query text of sparse and hybrid searches; the gateway runs it on query and
chunk text to highlight matches; benchmarks run it to build reference BM25
indexes over the same terms. Any change to its output changes the terms of
collections already indexed, so it must stay deterministic across processes,
machines and Python versions (no `hash()`, no locale).

Steps, per token:

1. Tokenise the ORIGINAL text into words: runs of letters, digits and
   combining marks, with inner apostrophes kept (`don't`, `o'neill`,
   `john's`; `'` and `’` both). Everything else separates words. Each token
   keeps its [start, end) character offsets in the original text.
2. Fold: case-fold, Unicode NFKD (ligatures `ﬁ` -> `fi`, full-width and
   compatibility forms to plain ones), drop combining marks (diacritics:
   `é` -> `e`), and map the Latin letters that NFKD does not decompose
   (`æ` -> `ae`, `ø` -> `o`, `ł` -> `l`, ...). A token that folds into
   several words (`½` -> `1⁄2`) yields several terms with the same offsets.
3. Drop English stop words (Snowball's English list, below).
4. Stem with the Snowball English ("Porter2") stemmer. Snowball's English
   stemmer also removes possessive suffixes (`john's` -> `john`).

Terms become sparse-vector indices through `term_index`: the term's BLAKE2b
digest of 4 bytes (`hashlib.blake2b(term.encode("utf-8"), digest_size=4)`) read
as a big-endian unsigned 32-bit integer (Qdrant's sparse indices are uint32).
Two different terms share an index with probability about n²/2³³ for a
vocabulary of n terms (around one pair in a 100,000-term collection), which
merges their statistics; harmless for ranking.

Scripts written without spaces (Chinese, Japanese, Thai) are not segmented:
this is an English analyser.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import NamedTuple

# PyStemmer is the maintained C binding of the Snowball project's own
# stemmers (the libstemmer_c sources compiled into the wheel), so its English
# stems are Snowball's by definition, and it is tens of times faster than the
# pure-Python ports (snowballstemmer, nltk), which matters because this runs
# on every indexed chunk. Its stemmer objects are not thread-safe: one per
# thread (below).
import Stemmer

__all__ = [
    "STOP_WORDS",
    "Token",
    "analyze",
    "fold",
    "term_frequencies",
    "term_index",
    "terms",
]


class Token(NamedTuple):
    """One analysed term and where its word is in the original text."""

    term: str
    start: int  # character offset of the word, inclusive
    end: int  # character offset after the word, exclusive


# Snowball's English stop word list (snowballstem.org/algorithms/english/stop.txt).
_SNOWBALL_ENGLISH_STOP = """
    i me my myself we our ours ourselves you your yours yourself yourselves
    he him his himself she her hers herself it its itself they them their
    theirs themselves what which who whom this that these those am is are was
    were be been being have has had having do does did doing would should
    could ought i'm you're he's she's it's we're they're i've you've we've
    they've i'd you'd he'd she'd we'd they'd i'll you'll he'll she'll we'll
    they'll isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't
    didn't won't wouldn't shan't shouldn't can't cannot couldn't mustn't let's
    that's who's what's here's there's when's where's why's how's a an the and
    but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on
    off over under again further then once here there when where why how all
    any both each few more most other some such no nor not only own same so
    than too very
"""
STOP_WORDS: frozenset[str] = frozenset(_SNOWBALL_ENGLISH_STOP.split())


def _combining_marks() -> str:
    """Combining marks (categories Mn, Mc, Me) of the Basic Multilingual Plane,
    as a regex character class body (about 25 ms, once per process)."""
    ranges: list[str] = []
    start = -1
    for code in range(0x10000 + 1):
        mark = code <= 0xFFFF and unicodedata.category(chr(code)).startswith("M")
        if mark and start < 0:
            start = code
        elif not mark and start >= 0:
            end = code - 1
            ranges.append(
                re.escape(chr(start))
                if start == end
                else f"{re.escape(chr(start))}-{re.escape(chr(end))}"
            )
            start = -1
    return "".join(ranges)


_MARKS = _combining_marks()
# A word: letters/digits (`[^\W_]`) and combining marks, with single inner
# apostrophes between them.
_WORD_CHAR = rf"(?:[^\W_]|[{_MARKS}])"
_WORD = re.compile(rf"{_WORD_CHAR}+(?:['’]{_WORD_CHAR}+)*")
# The same words in lower-cased ASCII text, where `[^\W_]` is `[a-z0-9]`, no
# combining marks exist and `’` cannot occur: 2.6 times faster than `_WORD`
# (the marks class is large), and ASCII is most text.
_ASCII_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
# Words inside an already folded token (no marks left by then).
_FOLDED_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")

# Lowercase letters NFKD leaves whole, folded as Lucene's ASCIIFoldingFilter does.
_FOLD_TABLE: dict[int, str | None] = {
    ord("æ"): "ae",
    ord("œ"): "oe",
    ord("ø"): "o",
    ord("đ"): "d",
    ord("ð"): "d",
    ord("þ"): "th",
    ord("ł"): "l",
    ord("ı"): "i",
    ord("ħ"): "h",
    ord("ŧ"): "t",
    ord("ŋ"): "n",
    ord("ſ"): "s",
    ord("ƒ"): "f",
    ord("’"): "'",
}


def fold(word: str) -> str:
    """Case-folded, compatibility-decomposed, without diacritics."""
    if word.isascii():
        return word.lower()
    text = unicodedata.normalize("NFKD", word.casefold())
    text = "".join(c for c in text if not unicodedata.category(c).startswith("M"))
    return text.translate(_FOLD_TABLE)


class _Stemmers(threading.local):
    def __init__(self) -> None:
        self.english = Stemmer.Stemmer("english")


_stemmers = _Stemmers()


def _folded_words(word: str) -> list[str]:
    """The stop-word-free folded words of one token (usually one)."""
    folded = fold(word)
    if word.isascii():
        # Fast path: tokenisation already made it letters, digits and "'".
        return [] if folded in STOP_WORDS else [folded]
    return [w for w in _FOLDED_WORD.findall(folded) if w not in STOP_WORDS]


def analyze(text: str) -> list[Token]:
    """The text's terms in order, each with its word's offsets in `text`."""
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    if text.isascii():
        # ASCII lower-casing keeps every offset, and no word needs folding.
        for match in _ASCII_WORD.finditer(text.lower()):
            word = match.group()
            if word not in STOP_WORDS:
                words.append(word)
                spans.append(match.span())
    else:
        for match in _WORD.finditer(text):
            for word in _folded_words(match.group()):
                words.append(word)
                spans.append(match.span())
    stems = _stemmers.english.stemWords(words)
    return [
        Token(stem, start, end) for stem, (start, end) in zip(stems, spans, strict=True) if stem
    ]


def terms(text: str) -> list[str]:
    """The text's terms in order (`analyze` without offsets)."""
    if text.isascii():
        words = [w for w in _ASCII_WORD.findall(text.lower()) if w not in STOP_WORDS]
    else:
        words = []
        for word in _WORD.findall(text):
            words.extend(_folded_words(word))
    return [stem for stem in _stemmers.english.stemWords(words) if stem]


def term_frequencies(text: str) -> dict[str, int]:
    """How often each term occurs in the text."""
    return dict(Counter(terms(text)))


@lru_cache(maxsize=1 << 16)
def term_index(term: str) -> int:
    """The term's sparse-vector index: its 4-byte BLAKE2b digest (UTF-8 input),
    big-endian, as an unsigned 32-bit integer. Stable everywhere."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big")
