"""Checks every extraction test applies to what it gets back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.indexer.extraction import Extracted, extract, section_at


def extract_path(path: Path, **options: Any) -> Extracted:
    """`extract` of a file's bytes (the indexer reads them in `reading.read_file`)."""
    return extract(str(path), path.read_bytes(), **options)


def check_sections(extracted: Extracted) -> None:
    """Sections are in order, inside the text, disjoint, and together hold all of
    its non-whitespace characters; `section_at` finds each of them."""
    text = extracted.text
    previous_end = 0
    for section in extracted.sections:
        assert previous_end <= section.start < section.end <= len(text), section
        assert text[section.start : section.end].strip(), section
        assert section.page >= 0
        assert section_at(extracted.sections, section.start) == section
        assert section_at(extracted.sections, section.end - 1) == section
        previous_end = section.end
    covered = {i for s in extracted.sections for i in range(s.start, s.end)}
    uncovered = [i for i, char in enumerate(text) if not char.isspace() and i not in covered]
    assert not uncovered, f"text outside sections at {uncovered[:5]}"


def section_texts(extracted: Extracted) -> list[tuple[int, str, str]]:
    """(page, heading, stripped text) of each section."""
    return [
        (s.page, s.heading, extracted.text[s.start : s.end].strip()) for s in extracted.sections
    ]
