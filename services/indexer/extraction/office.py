"""DOCX and PPTX: paragraphs, tables and slides, with headings as sections.

python-docx and python-pptx (both MIT) are the maintained, typed readers of
Office Open XML; they parse with lxml without resolving entities (no
billion-laughs or external-entity tricks). Both formats are zip archives, so
`zipguard` vets the archive (and tells a renamed file from the real thing)
before either library unpacks anything.

DOCX has no pages (layout happens in Word), so its sections have page 0 and
headings from paragraph styles: "Title", "Heading 1".."Heading 9" (or a style
based on one), nested by level. Body paragraphs and tables come in document
order; a table row becomes one line of tab-separated cells.

PPTX: one page per slide (numbered from 1), the slide title as its heading,
then the text of its other shapes (groups and tables included) in the order
of the slide's shape tree, then its speaker notes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

# python-docx and python-pptx (MIT): maintained, typed Office Open XML readers.
import docx
import pptx
from docx.table import Table
from docx.text.paragraph import Paragraph
from pptx.enum.shapes import MSO_SHAPE_TYPE

from services.indexer.extraction.document import (
    Extracted,
    ExtractionError,
    HeadingPath,
    TextBuilder,
    short,
)
from services.indexer.extraction.limits import Limits, plural
from services.indexer.extraction.zipguard import check_zip

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

_PACKAGE_FOLDERS = {
    "word/": "a DOCX document",
    "ppt/": "a PPTX presentation",
    "xl/": "an XLSX workbook",
}
_HEADING_STYLE = re.compile(r"heading\s*([1-9])")


def _check_package(data: bytes, limits: Limits, kind: str, folder: str) -> None:
    names = check_zip(data, limits, kind)
    if "[Content_Types].xml" not in names:
        raise ExtractionError(f"not a {kind} file (a zip archive, but not an Office document)")
    if not any(name.startswith(folder) for name in names):
        for other, what in _PACKAGE_FOLDERS.items():
            if any(name.startswith(other) for name in names):
                raise ExtractionError(f"not a {kind} file (it is {what})")


def _library_error(kind: str, exc: Exception) -> ExtractionError:
    # python-docx/pptx name the stream object in their messages; users need the rest.
    reason = re.sub(r"file '<[^']*>' ", "", short(exc))
    return ExtractionError(f"not a valid {kind} file: {reason}")


# ----------------------------------------------------------------------- DOCX


def extract_docx(path: str, data: bytes, limits: Limits) -> Extracted:
    _check_package(data, limits, "DOCX", "word/")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # hostile packages reach any corner of the parser
        raise _library_error("DOCX", exc) from exc
    builder = TextBuilder(separator="\n")
    headings = HeadingPath()
    heading = ""
    try:
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                level = _heading_level(block)
                if level is not None:
                    heading = headings.enter(level, block.text)
                builder.add(block.text, heading=heading)
            else:
                for line in _table_lines(block):
                    builder.add(line, heading=heading)
    except Exception as exc:
        raise _library_error("DOCX", exc) from exc
    return builder.build(path, DOCX_MIME)


def _heading_level(paragraph: Paragraph) -> int | None:
    """0 for "Title", n for "Heading n" (or a style based on them), else None."""
    try:
        style: Any = paragraph.style
    except Exception:
        return None
    for _ in range(8):  # base styles chain; bounded against cycles
        if style is None:
            return None
        for name in (str(style.name or "").lower(), str(style.style_id or "").lower()):
            if name == "title":
                return 0
            if match := _HEADING_STYLE.fullmatch(name):
                return int(match.group(1))
        style = style.base_style
    return None


def _table_lines(table: Table) -> Iterator[str]:
    """A line per row, cells tab-separated; a merged cell counted once; nested tables
    follow their row."""
    for row in table.rows:
        cells: list[str] = []
        nested: list[Table] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            texts: list[str] = []
            for inner in cell.iter_inner_content():
                if isinstance(inner, Paragraph):
                    texts.append(inner.text)
                else:
                    nested.append(inner)
            cells.append(" ".join(" ".join(texts).split()))
        yield "\t".join(cells).strip()
        for inner_table in nested:
            yield from _table_lines(inner_table)


# ----------------------------------------------------------------------- PPTX


def extract_pptx(path: str, data: bytes, limits: Limits) -> Extracted:
    _check_package(data, limits, "PPTX", "ppt/")
    try:
        presentation = pptx.Presentation(io.BytesIO(data))
        slides = list(presentation.slides)
    except Exception as exc:
        raise _library_error("PPTX", exc) from exc
    builder = TextBuilder()
    skipped: list[str] = []
    for number, slide in enumerate(slides[: limits.max_pages], start=1):
        try:
            _add_slide(builder, slide, number)
        except Exception as exc:
            skipped.append(f"slide {number}: unreadable ({short(exc, 80)})")
    if len(slides) > limits.max_pages:
        skipped.append(
            f"slides {limits.max_pages + 1}-{len(slides)}: over the limit of "
            f"{plural(limits.max_pages, 'slide')}"
        )
    return builder.build(path, PPTX_MIME, skipped=skipped)


def _add_slide(builder: TextBuilder, slide: Any, number: int) -> None:
    title_shape = slide.shapes.title
    title = _frame_text(title_shape.text_frame) if title_shape is not None else ""
    heading = " ".join(title.split())
    builder.add(title, page=number, heading=heading)
    title_id = title_shape.shape_id if title_shape is not None else None
    stack: list[Any] = list(reversed(list(slide.shapes)))
    while stack:
        shape = stack.pop()
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            stack.extend(reversed(list(shape.shapes)))
        elif shape.has_text_frame:
            if shape.shape_id != title_id:
                builder.add(_frame_text(shape.text_frame), page=number, heading=heading)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                line = "\t".join(" ".join(_frame_text(c.text_frame).split()) for c in row.cells)
                builder.add(line, page=number, heading=heading)
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        if frame is not None:
            builder.add(_frame_text(frame), page=number, heading=heading)


def _frame_text(frame: Any) -> str:
    # python-pptx writes a line break inside a paragraph (<a:br>) as a vertical tab.
    return str(frame.text).replace("\v", "\n")
