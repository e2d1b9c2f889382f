"""`semantik upload` (and `index` of a folder the server cannot see): the
files of a local folder streamed to DocumentService.UploadDocuments.

Resumable by document: files already indexed in the collection's upload
area with the same SHA-256 are not sent again, so a run cut short is
finished by running it again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semantik.v1 import document_pb2
from services.indexer.extraction import mime_type_for, supported_suffixes

# The hash the indexer knows a document's content by (Document.content_hash).
from services.indexer.sources import content_hash

PART_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LocalFile:
    path: Path
    name: str  # relative, posix: its name in the upload area
    sha256: str


def local_files(folder: Path) -> list[LocalFile]:
    """The regular files under `folder` the server can read, by name;
    symbolic links are not followed (what they lead to is not this folder)."""
    suffixes = supported_suffixes()
    found: list[LocalFile] = []
    for directory, folders, names in os.walk(folder):
        folders.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.suffix.lower() in suffixes and path.is_file() and not path.is_symlink():
                relative = path.relative_to(folder).as_posix()
                found.append(LocalFile(path, relative, content_hash(path)))
    return found


def indexed_hashes(documents: Iterable[Any], collection_id: str) -> dict[str, str]:
    """{name in the upload area: content hash} of a collection's documents
    that came from its uploads (`.../uploads/{collection}/{name}`)."""
    marker = f"/uploads/{collection_id}/"
    found: dict[str, str] = {}
    for document in documents:
        _, sep, name = document.source_path.partition(marker)
        if sep and document.state == document_pb2.DOCUMENT_STATE_INDEXED:
            found[name] = document.content_hash
    return found


def messages(parent: str, files: list[LocalFile]) -> Iterator[document_pb2.UploadDocumentsRequest]:
    """Each file as parts of at most PART_BYTES; the last carries its hash."""
    for number, file in enumerate(files):
        with file.path.open("rb") as source:
            part = source.read(PART_BYTES)
            first = True
            while True:
                following = source.read(PART_BYTES)
                last = not following
                yield document_pb2.UploadDocumentsRequest(
                    parent=parent if number == 0 and first else "",
                    file_name=file.name if first else "",
                    mime_type=(mime_type_for(file.name) or "") if first else "",
                    data=part,
                    last=last,
                    sha256=file.sha256 if last else "",
                )
                if last:
                    break
                part, first = following, False
