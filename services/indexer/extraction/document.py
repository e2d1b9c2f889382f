"""The result types of extraction, and the builder every format fills them with.

An `Extracted` is plain text plus `sections`: spans of that text with the
page (or slide) and heading path they came from, so that each chunk cut from
the text later can say where it is in the source (`section_at`). What could
not be read is never dropped silently: it is listed in `skipped` with a
reason, and a whole document that cannot be read raises `ExtractionError`,
whose message is the reason shown to users.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass


class ExtractionError(Exception):
    """The document cannot be extracted; `str()` is the reason shown to users."""


@dataclass(frozen=True)
class Section:
    """A span of `Extracted.text` and where it came from in the source."""

    start: int  # character offsets into Extracted.text, [start, end)
    end: int
    page: int  # 1-based page or slide; 0 when the format has no pages
    heading: str  # the nearest heading path joined with " > "; "" when none


@dataclass(frozen=True)
class AttachmentError:
    """An attachment that could not be extracted (its mail still was)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Extracted:
    path: str
    mime_type: str
    text: str
    sections: tuple[Section, ...]  # in text order, not overlapping; gaps allowed
    skipped: tuple[str, ...] = ()  # parts that could not be read, each with its reason
    attachments: tuple[Extracted | AttachmentError, ...] = ()


HEADING_SEPARATOR = " > "


def section_at(sections: Sequence[Section], offset: int) -> Section | None:
    """The section (of `Extracted.sections`) holding character `offset` of the
    text; None in a gap or out of range."""
    index = bisect.bisect_right(sections, offset, key=lambda section: section.start) - 1
    if index >= 0 and offset < sections[index].end:
        return sections[index]
    return None


class HeadingPath:
    """The open headings at a point of a document, outermost first."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        """Opens a heading of `level` (lower is outer), closing those at or below it."""
        title = " ".join(clean(title).split())
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        # A heading that repeats its parent (an <h1> equal to the <title>) adds nothing.
        if title and not (self._open and self._open[-1][1] == title):
            self._open.append((level, title))
        return self.path

    @property
    def path(self) -> str:
        return HEADING_SEPARATOR.join(title for _, title in self._open)


class TextBuilder:
    """Joins blocks of text with a separator and records a section per run of blocks
    sharing a page and heading."""

    def __init__(self, separator: str = "\n\n") -> None:
        self._separator = separator
        self._parts: list[str] = []
        self._length = 0
        self._sections: list[Section] = []

    def add(self, text: str, *, page: int = 0, heading: str = "") -> None:
        text = clean(text).strip()
        if not text:
            return
        heading = clean(heading)
        if self._parts:
            self._parts.append(self._separator)
            self._length += len(self._separator)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        last = self._sections[-1] if self._sections else None
        if last is not None and last.page == page and last.heading == heading:
            self._sections[-1] = Section(last.start, self._length, page, heading)
        else:
            self._sections.append(Section(start, self._length, page, heading))

    def build(
        self,
        path: str,
        mime_type: str,
        *,
        skipped: Sequence[str] = (),
        attachments: Sequence[Extracted | AttachmentError] = (),
    ) -> Extracted:
        return Extracted(
            path=path,
            mime_type=mime_type,
            text="".join(self._parts),
            sections=tuple(self._sections),
            skipped=tuple(skipped),
            attachments=tuple(attachments),
        )


# Control characters other than tab, newline, vertical tab, form feed, carriage return.
_CONTROL = dict.fromkeys([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])


def clean(text: str) -> str:
    """Drops control characters (NULs from PDF text layers and the like)."""
    return text.translate(_CONTROL)


def short(reason: object, limit: int = 160) -> str:
    """One line of at most `limit` characters, for a reason built from a library's error."""
    line = " ".join(clean(str(reason)).split()) or type(reason).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
