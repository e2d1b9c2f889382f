"""One file of a source folder read into the documents it holds.

A file is one document, except a mail, whose attachments are documents of
their own (named `{mail}#attachments/{n}/{file name}`). Reading stats the
file (size limit first), reads it once, hashes those bytes and extracts text
and structure from them (`extraction`), so the hash always describes the text
that was indexed. Synchronous and CPU-bound (parsers, OCR): run it in a
worker thread.

A file that cannot be read or extracted is still a `SourceFile`, with
`error` saying why; parts of a document that were left out (scanned pages
without OCR, pages over the limit) are in `skipped`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.indexer.extraction import (
    AttachmentError,
    Extracted,
    ExtractionError,
    Limits,
    Ocr,
    Section,
    extract,
    mime_type_for,
    section_at,
)
from services.indexer.extraction.limits import too_large

# Bounds memory per document and keeps Tokenize replies (token offsets) well
# under the 64 MiB message limit.
MAX_TEXT_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    path: str
    mime_type: str
    size: int = 0
    mtime_ns: int = 0
    content_hash: str = ""
    text: str = ""
    sections: tuple[Section, ...] = ()
    skipped: tuple[str, ...] = ()
    error: str = ""

    def place(self, offset: int) -> tuple[int, str]:
        """(page, heading path) of the text at `offset`; (0, "") when unknown."""
        section = section_at(self.sections, offset)
        return (section.page, section.heading) if section is not None else (0, "")


def failed(path: str, reason: str, size: int = 0, mtime_ns: int = 0) -> SourceFile:
    return SourceFile(path, mime_type_for(path) or "", size, mtime_ns, error=reason)


def read_file(path: Path, limits: Limits, ocr: Ocr | None) -> list[SourceFile]:
    """The file's documents: itself first, then any attachments."""
    name = str(path)
    try:
        stat = path.stat()
        if stat.st_size > limits.max_bytes:
            reason = too_large(stat.st_size, limits.max_bytes)
            return [failed(name, reason, stat.st_size, stat.st_mtime_ns)]
        with path.open("rb") as file:
            data = file.read(limits.max_bytes + 1)  # it may have grown since stat()
    except OSError as exc:
        return [failed(name, f"cannot read: {exc.strerror or exc}")]
    size, mtime_ns = len(data), stat.st_mtime_ns
    digest = hashlib.sha256(data).hexdigest()
    try:
        extracted = extract(name, data, limits=limits, ocr=ocr)
    except ExtractionError as exc:
        return [SourceFile(name, mime_type_for(name) or "", size, mtime_ns, digest, error=str(exc))]
    documents = [_source(extracted, size, mtime_ns, digest)]
    for attachment in _attachments(extracted):
        # An attachment changes only with its mail: the mail's hash and the
        # attachment's name identify its content.
        attachment_hash = hashlib.sha256(f"{digest}\0{attachment.path}".encode()).hexdigest()
        if isinstance(attachment, AttachmentError):
            documents.append(
                SourceFile(
                    attachment.path,
                    mime_type_for(attachment.path) or "",
                    0,
                    mtime_ns,
                    attachment_hash,
                    error=attachment.reason,
                )
            )
        else:
            documents.append(
                _source(attachment, len(attachment.text.encode()), mtime_ns, attachment_hash)
            )
    return documents


def _attachments(extracted: Extracted) -> Iterator[Extracted | AttachmentError]:
    """Every attachment, those of attached mails included (a forwarded mail's)."""
    for attachment in extracted.attachments:
        yield attachment
        if isinstance(attachment, Extracted):
            yield from _attachments(attachment)


def _source(extracted: Extracted, size: int, mtime_ns: int, digest: str) -> SourceFile:
    error = ""
    if len(extracted.text) > MAX_TEXT_CHARS:
        error = (
            f"text too long: {len(extracted.text):,} characters, "
            f"over the limit of {MAX_TEXT_CHARS:,}"
        )
    return SourceFile(
        path=extracted.path,
        mime_type=extracted.mime_type,
        size=size,
        mtime_ns=mtime_ns,
        content_hash=digest,
        text="" if error else extracted.text,
        sections=() if error else extracted.sections,
        skipped=extracted.skipped,
        error=error,
    )
