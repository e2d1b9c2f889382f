"""Plain text and Markdown: decoding with clear errors, and Markdown headings.

Text is UTF-8 (a leading byte order mark is dropped), or UTF-16/UTF-32 when
it starts with that encoding's byte order mark. Anything else is refused with
the byte offset of the first invalid byte rather than guessed at: a wrong
guess would index mojibake. Binary files under a text extension are refused
before decoding, from NUL bytes or a high share of control bytes in the
first 8 KiB. No library is needed beyond the standard codecs.

The text is returned as decoded (Markdown syntax included), so offsets into
it are offsets into the file's characters; Markdown headings (ATX `#` and
setext underlines, outside fenced code) become the sections.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable

from services.indexer.chunking.markdown import atx_heading
from services.indexer.extraction.document import Extracted, ExtractionError, HeadingPath, Section

SNIFF_BYTES = 8192
# Share of control characters (other than whitespace and ESC) that marks binary content.
MAX_CONTROL_SHARE = 0.10

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ALLOWED_CONTROLS = frozenset(b"\t\n\v\f\r\x1b")


def looks_binary(codes: Iterable[int]) -> bool:
    """True for a NUL or more than `MAX_CONTROL_SHARE` control characters."""
    total = controls = 0
    for code in codes:
        total += 1
        if code == 0:
            return True
        if (code < 0x20 or code == 0x7F) and code not in _ALLOWED_CONTROLS:
            controls += 1
    return total > 0 and controls / total > MAX_CONTROL_SHARE


def decode(data: bytes, suffix: str) -> str:
    """The text of `data`; `suffix` (".txt") names the file type in errors.

    Raises `ExtractionError` for binary content and invalid encodings.
    """
    encoding, bom_length = "utf-8", 0
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, bom_length = name, len(bom)
            break
    body = data[bom_length:]
    if encoding == "utf-8" and looks_binary(body[:SNIFF_BYTES]):
        raise ExtractionError(f"binary content in a {suffix} file")
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        label = (
            "UTF-8"
            if encoding == "utf-8"
            else encoding.upper().replace("-LE", "").replace("-BE", "")
        )
        raise ExtractionError(
            f"not valid {label} text: invalid byte at offset {bom_length + exc.start}"
        ) from exc
    if encoding != "utf-8" and looks_binary(ord(c) for c in text[:SNIFF_BYTES]):
        raise ExtractionError(f"binary content in a {suffix} file")
    return text


def extract_text(path: str, data: bytes, mime_type: str, suffix: str) -> Extracted:
    text = decode(data, suffix)
    if mime_type == "text/markdown":
        sections = markdown_sections(text)
    else:
        sections = (Section(0, len(text), 0, ""),) if text.strip() else ()
    return Extracted(path=path, mime_type=mime_type, text=text, sections=sections)


_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_sections(text: str) -> tuple[Section, ...]:
    """Sections of Markdown `text`, one per heading, covering the text end to end
    (whitespace-only spans left out)."""
    lines = text.splitlines(keepends=True)
    starts: list[tuple[int, str]] = [(0, "")]  # (offset, heading path) where sections open
    headings = HeadingPath()
    offset = 0
    fence = ""
    previous: tuple[int, str] | None = None  # (offset, line) of a paragraph line
    for line in lines:
        bare = line.rstrip("\r\n")
        opened = _FENCE.match(bare)
        paragraph: tuple[int, str] | None = None
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
        elif opened:
            fence = opened.group(1)
        elif atx := atx_heading(bare):
            starts.append((offset, headings.enter(*atx)))
        elif (underline := _SETEXT.match(bare)) and previous is not None:
            level = 1 if underline.group(1)[0] == "=" else 2
            starts.append((previous[0], headings.enter(level, previous[1])))
        elif bare.strip():
            paragraph = (offset, bare)
        previous = paragraph
        offset += len(line)
    sections: list[Section] = []
    for index, (start, heading) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        if text[start:end].strip():
            sections.append(Section(start, end, 0, heading))
    return tuple(sections)
