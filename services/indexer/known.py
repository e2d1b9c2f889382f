"""What metadata already holds of a source folder, in the shape `sync.diff` reads.

A mail's attachments are documents of their own (`{mail}#attachments/...`),
with no file of their own in the folder: they follow their mail (moved,
touched or removed with it) and are never compared with the scan themselves.
A document that failed last time is known with no content, so the next
import reads its file again.
"""

from __future__ import annotations

import dataclasses
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

    def with_attachments(self, paths: Iterable[str]) -> list[str]:
        """The paths, each followed by its attachments."""
        return [found for path in paths for found in (path, *self.attachments.get(path, ()))]


def known_files(documents: Iterable[document_pb2.Document]) -> KnownFiles:
    files: dict[str, Known] = {}
    attachments: dict[str, list[str]] = defaultdict(list)
    for document in documents:
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
    return KnownFiles(files, dict(attachments))


def as_stored(scan: Scan) -> Scan:
    """The scan with modify times at the precision metadata stores them, so an
    untouched file compares equal to its document."""
    files = {
        path: dataclasses.replace(state, mtime_ns=state.mtime_ns // _NS_PER_US * _NS_PER_US)
        for path, state in scan.files.items()
    }
    return dataclasses.replace(scan, files=files)
