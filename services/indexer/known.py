"""What metadata already holds of a source folder, in the shape `sync.diff` reads.

A mail's attachments are documents of their own (`{mail}#attachments/...`),
with no file of their own in the folder: they follow their mail (moved,
touched or removed with it) and are never compared with the scan themselves.
A document that failed last time is known with no content, so the next
import reads its file again.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from collections.abc import Iterable

from semantik.v1 import document_pb2
from services.indexer.sources import Scan
from services.indexer.sync import Known

ATTACHMENTS = "#attachments/"
MAIL_SUFFIX = ".eml"
# The stored modify time is microseconds (PostgreSQL's precision).
_NS_PER_US = 1000


def mail_of(path: str) -> str | None:
    """The mail's path when `path` names one of its attachments; else None."""
    parent, separator, _ = path.partition(ATTACHMENTS)
    return parent if separator and parent.lower().endswith(MAIL_SUFFIX) else None


@dataclasses.dataclass
class KnownFiles:
    files: dict[str, Known]
    attachments: dict[str, list[str]]  # mail path -> its attachments' paths
    # Content hash -> paths of every document with it, attachments included.
    paths_by_hash: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def held_elsewhere(self, content_hash: str, path: str) -> bool:
        """Another document has this content. Its chunk ids may derive from
        this very path (a file moved away keeps its ids), so a new document
        here must not reuse them."""
        return bool(self.paths_by_hash.get(content_hash, set()) - {path})

    def in_scope(self, scan: Scan) -> dict[str, Known]:
        """The known files this scan speaks for: those it listed or refused,
        and those whose files are gone. A file still on disk that this scan
        did not list (left out by this import's globs) stays as indexed."""
        problems = {path for path, _ in scan.problems}
        return {
            path: known
            for path, known in self.files.items()
            if path in scan.files or path in problems or not os.path.lexists(path)
        }

    def with_attachments(self, paths: Iterable[str]) -> list[str]:
        """The paths, each followed by its attachments."""
        return [found for path in paths for found in (path, *self.attachments.get(path, ()))]


def known_files(documents: Iterable[document_pb2.Document]) -> KnownFiles:
    files: dict[str, Known] = {}
    attachments: dict[str, list[str]] = defaultdict(list)
    paths_by_hash: dict[str, set[str]] = defaultdict(set)
    for document in documents:
        if document.content_hash:
            paths_by_hash[document.content_hash].add(document.source_path)
        mail = mail_of(document.source_path)
        if mail is not None:
            attachments[mail].append(document.source_path)
        elif document.state == document_pb2.DOCUMENT_STATE_INDEXED:
            files[document.source_path] = Known(
                document.content_hash,
                document.size_bytes,
                document.modify_time.ToNanoseconds(),
            )
        else:
            # Failed (or unknown): a size no file has, so it is read again.
            files[document.source_path] = Known("", -1, 0)
    return KnownFiles(files, dict(attachments), dict(paths_by_hash))


def as_stored(scan: Scan) -> Scan:
    """The scan with modify times at the precision metadata stores them, so an
    untouched file compares equal to its document."""
    files = {
        path: dataclasses.replace(state, mtime_ns=state.mtime_ns // _NS_PER_US * _NS_PER_US)
        for path, state in scan.files.items()
    }
    return dataclasses.replace(scan, files=files)
