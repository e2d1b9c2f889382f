"""Bounds on what one document may cost to extract.

Every limit is checked before the expensive step it guards: the file size
before reading, a DOCX/PPTX archive's central directory before unpacking
(`zipguard`), the page count before reading pages, the number of scanned
pages before OCR. The defaults admit any ordinary office document and stop
hostile ones early.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 64 * MIB  # size of one file (and of one mail attachment)
    max_unzipped_bytes: int = 256 * MIB  # DOCX/PPTX: all entries of the archive, unpacked
    max_zip_ratio: float = 100.0  # DOCX/PPTX: unpacked/packed size of any one entry...
    zip_ratio_min_bytes: int = 1 * MIB  # ...that unpacks to at least this much
    max_zip_entries: int = 10_000  # DOCX/PPTX: files in the archive
    max_pages: int = 5_000  # PDF pages, PPTX slides; later ones are skipped
    max_ocr_pages: int = 200  # scanned pages OCR'd per document; later ones are skipped
    ocr_dpi: int = 300  # resolution scanned pages are rendered at for OCR
    max_attachments: int = 100  # per mail; later ones are skipped
    max_depth: int = 3  # mails attached to mails attached to mails...
    max_html_depth: int = 5_000  # nested HTML elements (the parser is quadratic in it)


DEFAULT_LIMITS = Limits()


def mib(size: int) -> str:
    """`size` bytes for messages: "64 MiB", "1.5 MiB", "900 bytes"."""
    if size < MIB:
        return f"{size} bytes"
    value = size / MIB
    return f"{value:.0f} MiB" if value >= 10 or value == int(value) else f"{value:.1f} MiB"


def plural(count: int, noun: str) -> str:
    """ "1 page", "5 pages"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def too_large(size: int, limit: int) -> str:
    """The reason a file over the size limit is not indexed (scan, reader and extractor)."""
    return f"file too large: {mib(size)}, over the limit of {mib(limit)}"
