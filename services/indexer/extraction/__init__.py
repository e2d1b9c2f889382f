"""Document extraction for the indexer: bytes of a file in, text with its structure out.

Pure and synchronous: bytes in (`reading.read_file` reads the file), and no
I/O but running tesseract for scanned PDF pages. Run it in a worker thread from
async code. One module per format (`text`, `html`, `pdf`, `office`, `mail`);
`extract` picks one by the file's extension, checks the size limit first,
and returns an `Extracted` or raises `ExtractionError` with a short reason
to record against the document.

Empty files of any supported type are valid documents with empty text.
"""

from __future__ import annotations

import functools
import os

from services.indexer.extraction.document import (
    AttachmentError,
    Extracted,
    ExtractionError,
    Section,
    section_at,
    short,
)
from services.indexer.extraction.html import extract_html
from services.indexer.extraction.limits import DEFAULT_LIMITS, Limits, plural, too_large
from services.indexer.extraction.mail import UnsupportedAttachment, extract_eml
from services.indexer.extraction.ocr import Ocr
from services.indexer.extraction.office import DOCX_MIME, PPTX_MIME, extract_docx, extract_pptx
from services.indexer.extraction.pdf import extract_pdf
from services.indexer.extraction.text import extract_text

__all__ = [
    "DEFAULT_LIMITS",
    "AttachmentError",
    "Extracted",
    "ExtractionError",
    "Limits",
    "Ocr",
    "Section",
    "extract",
    "mime_type_for",
    "section_at",
    "supported_suffixes",
]

MIME_TYPES: dict[str, str] = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": DOCX_MIME,
    ".pptx": PPTX_MIME,
    ".eml": "message/rfc822",
}
_SUFFIXES = frozenset(MIME_TYPES)


def mime_type_for(name: str) -> str | None:
    """The MIME type of a file name or path by its extension; None when unsupported."""
    return MIME_TYPES.get(_suffix(name))


def supported_suffixes() -> frozenset[str]:
    """Lower-case extensions with their dot: ".pdf", ".docx", ..."""
    return _SUFFIXES


@functools.cache
def default_ocr() -> Ocr:
    """`Ocr.detect()` of "tesseract" on the PATH, probed once per process (it runs
    tesseract twice)."""
    return Ocr.detect()


def extract(
    path: str, data: bytes, *, limits: Limits = DEFAULT_LIMITS, ocr: Ocr | None = None
) -> Extracted:
    """The text and structure of `data`, a file at `path` (its extension picks the format).

    `ocr` reads scanned PDF pages; None uses tesseract from the PATH when there
    is one (`default_ocr`). Raises `ExtractionError` with a short reason.
    """
    return _extract(path, data, limits, ocr, depth=0)


def _extract(path: str, data: bytes, limits: Limits, ocr: Ocr | None, depth: int) -> Extracted:
    suffix = _check_type(path)
    try:
        return _dispatch(path, suffix, data, limits=limits, ocr=ocr, depth=depth)
    except ExtractionError:
        raise
    except Exception as exc:
        # Hostile input can reach corners of a parser that no format module
        # foresaw; it is still one document's failure. The cause stays chained.
        raise ExtractionError(f"unreadable {suffix} file: {short(exc)}") from exc


def _dispatch(
    path: str, suffix: str, data: bytes, *, limits: Limits, ocr: Ocr | None, depth: int
) -> Extracted:
    mime_type = MIME_TYPES[suffix]
    if len(data) > limits.max_bytes:
        raise _too_large(len(data), limits)
    if not data:
        return Extracted(path=path, mime_type=mime_type, text="", sections=())
    if suffix in (".txt", ".md"):
        return extract_text(path, data, mime_type, suffix)
    if suffix in (".html", ".htm"):
        return extract_html(path, data, limits, suffix)
    if suffix == ".pdf":
        return extract_pdf(path, data, limits, default_ocr() if ocr is None else ocr)
    if suffix == ".docx":
        return extract_docx(path, data, limits)
    if suffix == ".pptx":
        return extract_pptx(path, data, limits)
    if depth > limits.max_depth:
        raise ExtractionError(f"mail nested deeper than {plural(limits.max_depth, 'level')}")

    def extract_part(part_path: str, part_data: bytes, part_depth: int) -> Extracted:
        if mime_type_for(part_path) is None:
            raise UnsupportedAttachment(_unsupported(part_path))
        return _extract(part_path, part_data, limits, ocr, part_depth)

    return extract_eml(path, data, limits, depth, extract_part)


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _check_type(path: str) -> str:
    suffix = _suffix(path)
    if suffix not in _SUFFIXES:
        raise ExtractionError(_unsupported(path))
    return suffix


def _unsupported(path: str) -> str:
    suffix = _suffix(path)
    return f"unsupported file type {suffix}" if suffix else "unsupported file type (no extension)"


def _too_large(size: int, limits: Limits) -> ExtractionError:
    return ExtractionError(too_large(size, limits.max_bytes))
