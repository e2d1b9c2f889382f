"""PDF: the text layer page by page, OCR for scanned pages, bookmarks as headings.

pypdf (BSD-3-Clause) is pure Python, actively maintained, typed, and guards
against decompression bombs in streams; it reads the text layer and the
outline. Pages without a text layer that carry images are scanned pages:
they are rendered with pypdfium2 (Apache-2.0/BSD-3-Clause, PDFium's maintained
bindings, the renderer of Chrome) and read by tesseract when `Ocr` is
available, otherwise listed in `skipped` with the reason. Pages with neither
text nor images are blank and contribute nothing.

Each page is one section (page numbers from 1); its heading is the outline
(bookmark) path in force where the page starts: the first bookmark on that
page if there is one, else the last before it.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator
from typing import Any

# pypdfium2 (Apache-2.0 / BSD-3-Clause): maintained PDFium bindings, renders pages for OCR.
import pypdfium2

# pypdf (BSD-3-Clause): maintained, pure Python, typed; text layer and outline.
from pypdf import PageObject, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

from services.indexer.extraction.document import (
    HEADING_SEPARATOR,
    Extracted,
    ExtractionError,
    TextBuilder,
    clean,
    short,
)
from services.indexer.extraction.limits import Limits, plural
from services.indexer.extraction.ocr import Ocr, OcrError

MIME_TYPE = "application/pdf"

# PDFium is not thread-safe: one call into it at a time per process.
_PDFIUM_LOCK = threading.Lock()
# A rendered page holds at most this many pixels (A4 at 300 dpi is 8.7 million),
# so a hostile page size lowers the resolution instead of exhausting memory.
MAX_RENDER_PIXELS = 40_000_000


def extract_pdf(path: str, data: bytes, limits: Limits, ocr: Ocr) -> Extracted:
    if b"%PDF-" not in data[:1024]:
        raise ExtractionError("not a PDF file (no %PDF header)")
    reader = _open(data)
    try:
        page_count = len(reader.pages)
    except Exception as exc:
        raise ExtractionError(f"corrupt PDF: {short(exc)}") from exc
    headings = _page_headings(reader, page_count)
    builder = TextBuilder()
    skipped: list[str] = []
    renderer = _Renderer(data)
    ocr_pages = 0
    try:
        for index in range(min(page_count, limits.max_pages)):
            number = index + 1
            try:
                page = reader.pages[index]
                text = page.extract_text()
            except Exception as exc:
                skipped.append(f"page {number}: unreadable ({short(exc, 80)})")
                continue
            if not text.strip() and _has_images(page):
                if not ocr.available:
                    skipped.append(f"page {number}: scanned page, no OCR ({ocr.reason})")
                    continue
                if ocr_pages >= limits.max_ocr_pages:
                    skipped.append(
                        f"page {number}: scanned page, not read (over the limit of "
                        f"{plural(limits.max_ocr_pages, 'OCR page')} per document)"
                    )
                    continue
                ocr_pages += 1
                try:
                    text = ocr.read_page(renderer.render(index, limits.ocr_dpi))
                except (OcrError, _RenderError) as exc:
                    skipped.append(f"page {number}: scanned page, OCR failed ({short(exc, 80)})")
                    continue
            builder.add(text, page=number, heading=headings[index])
    finally:
        renderer.close()
    if page_count > limits.max_pages:
        skipped.append(
            f"pages {limits.max_pages + 1}-{page_count}: over the limit of "
            f"{plural(limits.max_pages, 'page')}"
        )
    return builder.build(path, MIME_TYPE, skipped=skipped)


def _open(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("encrypted PDF: a password is needed")
    except ExtractionError:
        raise
    except (FileNotDecryptedError, DependencyError, NotImplementedError) as exc:
        raise ExtractionError(f"encrypted PDF: {short(exc)}") from exc
    except (PdfReadError, PyPdfError) as exc:
        raise ExtractionError(f"corrupt PDF: {short(exc)}") from exc
    except Exception as exc:  # hostile files reach any corner of the parser
        raise ExtractionError(f"corrupt PDF: {short(exc)}") from exc
    return reader


def _has_images(page: PageObject) -> bool:
    try:
        return len(page.images) > 0
    except Exception:
        return True  # cannot tell: treat as scanned, so it is OCR'd or reported


def _page_headings(reader: PdfReader, page_count: int) -> list[str]:
    """The outline path in force at the start of each page ("" before any bookmark)."""
    firsts: dict[int, str] = {}  # page index -> path of its first bookmark
    lasts: dict[int, str] = {}  # page index -> path of its last bookmark
    try:
        for index, path in _outline(reader, reader.outline, ()):
            if 0 <= index < page_count:
                firsts.setdefault(index, path)
                lasts[index] = path
    except Exception:
        return [""] * page_count  # a broken outline costs the headings, not the text
    headings: list[str] = []
    current = ""
    for index in range(page_count):
        headings.append(firsts.get(index, current))
        current = lasts.get(index, current)
    return headings


def _outline(reader: PdfReader, items: Any, parents: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """(page index, heading path) of each bookmark, in document order."""
    last_title: str | None = None
    for item in items:
        if isinstance(item, list):  # the children of the bookmark before it
            child_parents = (*parents, last_title) if last_title is not None else parents
            yield from _outline(reader, item, child_parents)
            continue
        title = " ".join(clean(str(item.title or "")).split())
        last_title = title
        page = reader.get_destination_page_number(item)
        if page is not None:
            yield page, HEADING_SEPARATOR.join((*parents, title))


class _RenderError(Exception):
    pass


class _Renderer:
    """Renders pages with PDFium, opening the document on the first scanned page."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._document: Any = None

    def render(self, index: int, dpi: int) -> Any:
        try:
            with _PDFIUM_LOCK:
                if self._document is None:
                    self._document = pypdfium2.PdfDocument(self._data, password="")
                page = self._document[index]
                try:
                    width, height = page.get_size()  # points, 1/72 inch
                    scale = dpi / 72
                    if width * height * scale * scale > MAX_RENDER_PIXELS:
                        scale = math.sqrt(MAX_RENDER_PIXELS / max(width * height, 1.0))
                    return page.render(scale=scale, grayscale=True).to_pil()
                finally:
                    page.close()
        except Exception as exc:
            raise _RenderError(f"cannot render: {short(exc, 60)}") from exc

    def close(self) -> None:
        if self._document is not None:
            with _PDFIUM_LOCK:
                self._document.close()
