"""Scanned PDF pages: read by tesseract when it is there, reported as skipped when not."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.indexer.extraction import Limits, Ocr
from tests import documents
from tests.indexer.extraction.helpers import check_sections, extract_path

TESSERACT = Ocr.detect()


def test_detect_reports_a_missing_command() -> None:
    missing = Ocr.detect(command="/nonexistent/bin/tesseract")
    assert not missing.available
    assert missing.reason == "tesseract (/nonexistent/bin/tesseract) not found"


def test_scanned_page_without_ocr_is_skipped_with_the_reason(tmp_path: Path) -> None:
    path = documents.write_mixed_pdf(
        tmp_path / "mixed.pdf", ["typed page one", None, "typed page three"], scanned_text="SCAN"
    )
    extracted = extract_path(path, ocr=Ocr.detect(command="no-such-tesseract-binary"))
    check_sections(extracted)
    assert [s.page for s in extracted.sections] == [1, 3]
    assert extracted.skipped == (
        "page 2: scanned page, no OCR (tesseract (no-such-tesseract-binary) not found)",
    )


def test_scanned_pages_over_the_ocr_limit_are_skipped(tmp_path: Path) -> None:
    path = documents.write_scanned_pdf(tmp_path / "scan.pdf", "SCAN")
    extracted = extract_path(path, limits=Limits(max_ocr_pages=0), ocr=TESSERACT)
    assert extracted.text == ""
    if TESSERACT.available:
        assert extracted.skipped == (
            "page 1: scanned page, not read (over the limit of 0 OCR pages per document)",
        )
    else:
        assert extracted.skipped[0].startswith("page 1: scanned page, no OCR (")


@pytest.mark.skipif(not TESSERACT.available, reason=f"no OCR here: {TESSERACT.reason}")
def test_scanned_page_is_read_by_ocr(tmp_path: Path) -> None:
    assert TESSERACT.version
    path = documents.write_mixed_pdf(
        tmp_path / "mixed.pdf", ["typed page one", None], scanned_text="SEMANTIK OCR 4721"
    )
    extracted = extract_path(path, ocr=TESSERACT)
    check_sections(extracted)
    assert extracted.skipped == ()
    assert [s.page for s in extracted.sections] == [1, 2]
    second = extracted.sections[1]
    words = extracted.text[second.start : second.end].split()
    assert "SEMANTIK" in words and "4721" in words


@pytest.mark.skipif(not TESSERACT.available, reason=f"no OCR here: {TESSERACT.reason}")
def test_default_ocr_is_tesseract_from_the_path(tmp_path: Path) -> None:
    path = documents.write_scanned_pdf(tmp_path / "scan.pdf", "INVOICE 9381")
    assert "9381" in extract_path(path).text.split()
