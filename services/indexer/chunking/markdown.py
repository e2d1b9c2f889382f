"""`markdown`: sections by headings, then `recursive` within each section.

ATX headings (`#` to `######`) and setext headings (a paragraph underlined
with `===` or `---`) start sections; lines inside fenced code blocks (``` or
~~~) and YAML/TOML front matter are never headings. A chunk never spans two
sections, and carries its section's heading path ("Intro > Install"); text
before the first heading has the path "". A section holding nothing but its
heading line, followed by a subsection, joins that subsection (whose path
names it) rather than becoming a chunk of one heading line.

Documents that are not Markdown but whose extractor knows the headings (DOCX)
pass the sections' character offsets instead (`Document.sections_at`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.indexer.chunking.base import Document, Section

PATH_SEPARATOR = " > "

# An ATX heading's opening; the closing `#`s are stripped in `atx_heading`
# (a pattern for them backtracks quadratically on runs of spaces).
_ATX_OPEN = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*))?")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
# Lines that do not continue a paragraph: list items, quotes, table rows, HTML.
_NOT_PARAGRAPH = re.compile(r" {0,3}(?:[-*+][ \t]|\d{1,9}[.)][ \t]|>|\||<)|(?: {4}|\t)")
_FRONT_MATTER = {"---": ("---", "..."), "+++": ("+++",)}


@dataclass(frozen=True)
class Heading:
    start: int  # character offset where the heading (its first line) starts
    body: int  # character offset after the heading's last line
    level: int
    title: str


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without its line break) of each line."""
    lines: list[tuple[int, str]] = []
    offset = 0
    for raw in text.split("\n"):
        lines.append((offset, raw.removesuffix("\r")))
        offset += len(raw) + 1
    return lines


def headings(text: str) -> list[Heading]:
    """The Markdown headings of `text`, in order."""
    found: list[Heading] = []
    lines = _lines(text)
    position = 0
    closers = _FRONT_MATTER.get(lines[0][1].rstrip()) if lines else None
    if closers:
        for index in range(1, len(lines)):
            if lines[index][1].rstrip() in closers:
                position = index + 1
                break
    fence: tuple[str, int] | None = None  # (character, length) of the open fence
    paragraph: list[tuple[int, str]] = []  # lines of the open paragraph
    for offset, line in lines[position:]:
        line_end = offset + len(line) + 1
        if fence is not None:
            close = _FENCE.fullmatch(line)
            if (
                close
                and close.group(1)[0] == fence[0]
                and len(close.group(1)) >= fence[1]
                and not close.group(2).strip()
            ):
                fence = None
            continue
        if not line.strip():
            paragraph = []
            continue
        opening = _FENCE.fullmatch(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = (opening.group(1)[0], len(opening.group(1)))
            paragraph = []
            continue
        atx = atx_heading(line)
        if atx:
            found.append(Heading(offset, line_end, atx[0], _clean(atx[1])))
            paragraph = []
            continue
        setext = _SETEXT.fullmatch(line)
        if setext and paragraph:
            level = 1 if setext.group(1)[0] == "=" else 2
            title = _clean(" ".join(part for _, part in paragraph))
            found.append(Heading(paragraph[0][0], line_end, level, title))
            paragraph = []
            continue
        if paragraph or not _NOT_PARAGRAPH.match(line):
            paragraph.append((offset, line))
    return found


def _clean(title: str) -> str:
    return " ".join(title.split())


def markdown_sections(document: Document) -> list[Section]:
    """Sections of a Markdown document: one per heading, plus the text before
    the first; heading-only sections joined to the subsection that follows."""
    marks = headings(document.text)
    # (first token, first token after the heading line, stop, level, path)
    raw: list[tuple[int, int, int, int, str]] = []
    firsts = [0, *(document.token_at(mark.start) for mark in marks)]
    stops = [*firsts[1:], document.count]
    if firsts[0] < stops[0]:
        raw.append((firsts[0], firsts[0], stops[0], 0, ""))
    stack: list[tuple[int, str]] = []
    for mark, first, stop in zip(marks, firsts[1:], stops[1:], strict=True):
        while stack and stack[-1][0] >= mark.level:
            stack.pop()
        stack.append((mark.level, mark.title))
        if first < stop:
            path = PATH_SEPARATOR.join(title for _, title in stack if title)
            body = document.token_at(mark.body, first, stop)
            raw.append((first, body, stop, mark.level, path))
    sections: list[Section] = []
    carried: int | None = None
    for index, (first, body, stop, level, path) in enumerate(raw):
        start = first if carried is None else carried
        following = raw[index + 1] if index + 1 < len(raw) else None
        if level and body >= stop and following is not None and following[3] > level:
            carried = start  # only a heading line: it opens the subsection that follows
            continue
        carried = None
        sections.append(Section(start, stop, path))
    return sections


def atx_heading(line: str) -> tuple[int, str] | None:
    """(level, text) of an ATX heading line (`## Title ##`), in linear time; else None."""
    match = _ATX_OPEN.fullmatch(line)
    if match is None:
        return None
    text = (match.group(2) or "").rstrip(" \t")
    unclosed = text.rstrip("#")
    if unclosed != text and (not unclosed or unclosed[-1] in " \t"):
        text = unclosed.rstrip(" \t")
    return len(match.group(1)), text
