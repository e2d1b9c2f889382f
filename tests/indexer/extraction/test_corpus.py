"""`tests.documents.write_corpus`: a mixed corpus whose every file extracts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from services.indexer.extraction import Extracted, Ocr, supported_suffixes
from tests import documents
from tests.indexer.extraction.helpers import check_sections, extract_path


def all_text(extracted: Extracted) -> str:
    parts = [extracted.text]
    parts += [all_text(a) for a in extracted.attachments if isinstance(a, Extracted)]
    return "\n".join(parts)


def test_every_corpus_file_extracts_with_its_marker(tmp_path: Path) -> None:
    files = documents.write_corpus(tmp_path, 30, seed=5)
    assert len(files) == 30
    assert Counter(f.format for f in files) == {
        fmt: 30 // 7 + (i < 30 % 7) for i, fmt in enumerate(documents.CORPUS_FORMATS)
    }
    assert {f.path.suffix for f in files} <= supported_suffixes()
    assert len({f.marker for f in files}) == 30
    for file in files:
        extracted = extract_path(file.path, ocr=Ocr.unavailable("not needed"))
        check_sections(extracted)
        assert extracted.skipped == (), file.path
        text = all_text(extracted)
        assert text.count(file.marker) >= 1, file.path
        for sentence in file.sentences:
            assert " ".join(sentence.split()) in " ".join(text.split()), (file.path, sentence)
        others = {f.marker for f in files} - {file.marker}
        assert not any(marker in text for marker in others)


def test_the_corpus_is_deterministic_per_seed(tmp_path: Path) -> None:
    first = documents.write_corpus(tmp_path / "a", 8, seed=1)
    again = documents.write_corpus(tmp_path / "b", 8, seed=1)
    other = documents.write_corpus(tmp_path / "c", 8, seed=2)
    assert [(f.topic, f.sentences) for f in first] == [(f.topic, f.sentences) for f in again]
    assert [f.marker for f in first] != [f.marker for f in other]
    for one, two in zip(first, again, strict=True):
        if one.format in ("txt", "md", "html", "pdf"):
            assert one.path.read_bytes() == two.path.read_bytes()
