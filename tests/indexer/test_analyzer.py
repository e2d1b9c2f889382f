"""textkit's analyser: folding, stop words, stemming, offsets, the term hash."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import textkit
from textkit import STOP_WORDS, analyze, fold, term_frequencies, term_index, terms


def test_lowercases_folds_diacritics_and_ligatures() -> None:
    assert fold("Café") == "cafe"
    assert fold("ﬁnancial") == "financial"  # the ﬁ ligature
    assert fold("ÆSIR") == "aesir"
    assert fold("Straße") == "strasse"
    assert fold("Łódź") == "lodz"
    assert fold("Ｆｕｌｌ") == "full"  # full-width forms
    assert fold("e\u0301cole") == "ecole"  # decomposed accent
    assert terms("Naïve CAFÉ") == terms("naive cafe") == ["naiv", "cafe"]


def test_stop_words_are_dropped_and_the_list_is_snowballs() -> None:
    assert {"the", "and", "of", "don't", "itself", "very"} <= STOP_WORDS
    assert len(STOP_WORDS) == 174
    assert terms("The cat and the hat") == ["cat", "hat"]
    assert terms("the of and it is") == []
    # Curly apostrophes count as straight ones.
    assert terms("don’t stop") == ["stop"]


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("running", "run"),
        ("cats", "cat"),
        ("flies", "fli"),
        ("aerodynamics", "aerodynam"),
        ("generously", "generous"),
        ("John's", "john"),  # Snowball English removes possessives
        ("1960s", "1960s"),
    ],
)
def test_snowball_english_stems(word: str, stem: str) -> None:
    assert terms(word) == [stem]


def test_words_are_letters_and_digits() -> None:
    assert terms("mach-2.5 flow_rate x+y") == ["mach", "2", "5", "flow", "rate", "x", "y"]
    assert terms("") == []
    assert terms("  ... !!! ") == []


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown foxes jumped over the lazy dogs.",
        "Naïve café owners’ ﬁnancial reports — Æsir ½ price, İstanbul!",
        "e\u0301cole\u0301 Ｆｕｌｌ-width ﬂow; Straße",
        "Ελληνικά κείμενα και Кириллица тоже",
    ],
)
def test_offsets_point_at_the_words_of_the_original_text(text: str) -> None:
    tokens = analyze(text)
    assert [t.term for t in tokens] == terms(text)
    assert tokens, text
    for token in tokens:
        original = text[token.start : token.end]
        assert original.strip() == original and original
        # Each token's original word analyses to (among others) that term.
        assert token.term in terms(original)
    starts = [t.start for t in tokens]
    assert starts == sorted(starts)


def test_offsets_of_accented_and_ligature_input() -> None:
    text = "Un ﬁlm naïf à Zürich"
    found = {t.term: text[t.start : t.end] for t in analyze(text)}
    assert found == {"un": "Un", "film": "ﬁlm", "naif": "naïf", "zurich": "Zürich"}
    # One source character that folds into two words gives both the same span.
    half = analyze("½")
    assert [(t.term, t.start, t.end) for t in half] == [("1", 0, 1), ("2", 0, 1)]


def test_term_frequencies() -> None:
    assert term_frequencies("Wing wings WING tail") == {"wing": 3, "tail": 1}
    assert term_frequencies("the a an") == {}


def test_term_index_is_blake2b_4_bytes_big_endian() -> None:
    expected = int.from_bytes(hashlib.blake2b(b"wing", digest_size=4).digest(), "big")
    assert term_index("wing") == expected
    assert 0 <= term_index("caf\u00e9") < 2**32
    assert term_index("wing") != term_index("tail")


def test_analysis_is_the_same_in_another_process() -> None:
    # No hash(), no locale: a fresh interpreter (another PYTHONHASHSEED) agrees.
    text = "Experimental aerodynamics of a wing in the slipstream, naïvely"
    code = f"import textkit;print([(t, textkit.term_index(t)) for t in textkit.terms({text!r})])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(textkit.__file__).parents[1])},
    ).stdout.strip()
    assert out == str([(t, term_index(t)) for t in terms(text)])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=200))
def test_the_ascii_fast_path_equals_the_general_path(text: str) -> None:
    # A trailing non-ASCII word sends the same text down the general path.
    general = analyze(text + " é")
    assert general[-1] == (("e", len(text) + 1, len(text) + 2))
    assert analyze(text) == general[:-1]
    assert terms(text) == terms(text + " é")[:-1]
