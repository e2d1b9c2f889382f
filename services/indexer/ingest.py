"""The import pipeline of one operation: a folder of text files into a collection.

Per document: read, hash, decode, tokenize (embedder), chunk, embed
(embedder), write vectors, write the document and its chunks (metadata), then
remove the vectors of the version it replaced. Vectors are written before
metadata so a document that metadata lists is always searchable; a vector
without metadata is skipped at hydration and overwritten by a retry, since
chunk ids derive from (collection, path, content hash, index).

Failures of one document (unreadable, not UTF-8, too large, rejected by the
embedder) are recorded on the operation and the run goes on. Anything else
stops the run: transient ones (a service unavailable) raise
`TransientImportError` so the job queue retries, other ones (and the last
try) mark the operation FAILED.

Empty files, and files with no tokens, are indexed with zero chunks: they are
valid documents with nothing to search, not errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf import timestamp_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import document_pb2, operation_pb2
from services.indexer import sparse
from services.indexer.chunking import Chunk, chunk_text
from services.indexer.vector_store import (
    PAYLOAD_MIME_TYPE,
    PAYLOAD_MODIFIED_AT,
    PAYLOAD_SOURCE_PATH,
    VectorPoint,
    VectorStore,
    epoch_seconds,
)

log = logging.getLogger(__name__)

MIME_TYPES = {".txt": "text/plain", ".md": "text/markdown"}

# Bounds memory per document and keeps Tokenize replies (two int32 offsets
# per token) well under the 64 MiB message limit.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

PROGRESS_INTERVAL_S = 0.3

# Fixed namespace of chunk ids (uuid5), so the same chunk always gets the same id.
CHUNK_NAMESPACE = uuid.UUID("5b0e6a3c-2f5e-4c1d-9a47-8d2f0c1e7b93")

# Downstream codes worth retrying the whole job for.
_TRANSIENT_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}
# Downstream codes that reject one document's content.
_DOCUMENT_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE}


@dataclass(frozen=True)
class TokenSpans:
    """Character spans of a text's tokens, special tokens excluded."""

    starts: Sequence[int]
    ends: Sequence[int]


class Embedder(Protocol):
    async def tokenize(self, text: str) -> TokenSpans: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


class Metadata(Protocol):
    async def update_operation(self, request: metadata_pb2.UpdateOperationRequest) -> None: ...

    async def upsert_document(self, request: metadata_pb2.UpsertDocumentRequest) -> list[str]:
        """Returns the chunk ids of the version it replaced."""
        ...


class TransientImportError(Exception):
    """The run stopped on a failure that a later try may not meet."""


class FatalImportError(Exception):
    """The run cannot go on; the message is the operation's error."""


class DocumentError(Exception):
    """One document cannot be indexed; the message is the reason."""


@dataclass(frozen=True)
class ImportSpec:
    operation_id: str
    collection_id: str
    source_path: str
    chunk_tokens: int
    overlap_tokens: int

    @classmethod
    def from_proto(cls, request: Any) -> ImportSpec:
        return cls(
            operation_id=request.operation_id,
            collection_id=request.collection_id,
            source_path=request.source_path,
            chunk_tokens=request.chunk_tokens,
            overlap_tokens=request.overlap_tokens,
        )


@dataclass
class ImportSummary:
    state: operation_pb2.OperationState
    documents_total: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    chunks_done: int = 0
    bytes_done: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    error_message: str = ""


def chunk_id(collection_id: str, source_path: str, content_hash: str, index: int) -> str:
    name = f"{collection_id}\x00{source_path}\x00{content_hash}\x00{index}"
    return str(uuid.uuid5(CHUNK_NAMESPACE, name))


def find_documents(root: Path) -> list[Path]:
    """`.txt` and `.md` files under `root`, sorted.

    Symlinked files count when they resolve inside `root`; symlinked folders
    are not entered (no escapes, no cycles).
    """
    real_root = root.resolve()
    found: list[Path] = []

    def unreadable(error: OSError) -> None:
        log.warning("cannot list %s: %s", error.filename, error.strerror)

    for folder, _dirs, files in os.walk(root, onerror=unreadable):
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() not in MIME_TYPES:
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    log.warning("skipping %s: symlink to %s, outside %s", path, target, root)
                    continue
            if path.is_file():
                found.append(path)
    return sorted(found)


@dataclass(frozen=True)
class SourceFile:
    path: str
    mime_type: str
    size: int = 0
    mtime_ns: int = 0
    content_hash: str = ""
    text: str = ""
    error: str = ""


def read_source(path: Path) -> SourceFile:
    """Reads and decodes one file; `error` says why it cannot be indexed."""
    mime = MIME_TYPES[path.suffix.lower()]
    try:
        stat = path.stat()
        if stat.st_size > MAX_DOCUMENT_BYTES:
            return SourceFile(
                str(path),
                mime,
                stat.st_size,
                stat.st_mtime_ns,
                error=f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB",
            )
        data = path.read_bytes()
    except OSError as exc:
        return SourceFile(str(path), mime, error=f"cannot read: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    try:
        # utf-8-sig: a byte order mark is not part of the text.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return SourceFile(
            str(path),
            mime,
            len(data),
            stat.st_mtime_ns,
            digest,
            error=f"not valid UTF-8 (byte {exc.start})",
        )
    return SourceFile(str(path), mime, len(data), stat.st_mtime_ns, digest, text)


class Importer:
    """Runs import operations; one instance serves concurrent jobs."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        metadata: Metadata,
        *,
        embed_batch_texts: int = 64,
        document_concurrency: int = 8,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.metadata = metadata
        self.embed_batch_texts = embed_batch_texts
        self.document_concurrency = document_concurrency
        self.progress_interval_s = progress_interval_s
        self.clock = clock

    async def run(self, spec: ImportSpec, *, final_try: bool = True) -> ImportSummary:
        return await _Run(self, spec).run(final_try)


class _Run:
    def __init__(self, importer: Importer, spec: ImportSpec) -> None:
        self.importer = importer
        self.spec = spec
        self.summary = ImportSummary(state=operation_pb2.OPERATION_STATE_RUNNING)
        self.unsent_errors: list[tuple[str, str]] = []
        self.last_report = 0.0
        self.dimensions = 0

    @property
    def operation_name(self) -> str:
        return f"operations/{self.spec.operation_id}"

    async def run(self, final_try: bool) -> ImportSummary:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise  # the worker stops; the queue runs the job again
        except Exception as exc:
            if not final_try and _is_transient(exc):
                log.warning("%s: transient failure, will retry: %s", self.operation_name, exc)
                raise TransientImportError(str(exc)) from exc
            await self._fail(exc)
        return self.summary

    async def _run(self) -> None:
        store, spec = self.importer.store, self.spec
        dimensions = await store.dimensions(spec.collection_id)
        if dimensions is None:
            raise FatalImportError(f"vector collection {spec.collection_id!r} does not exist")
        self.dimensions = dimensions
        paths = await asyncio.to_thread(find_documents, Path(spec.source_path))
        self.summary.documents_total = len(paths)
        await self._report(operation_pb2.OPERATION_STATE_RUNNING)
        # Several documents in flight at once: their embedding requests meet
        # in the embedder's batcher and share forward passes, where one
        # document at a time would send batches of one or two chunks.
        slots = asyncio.Semaphore(self.importer.document_concurrency)

        async def index_one(path: Path) -> None:
            async with slots:
                await self._index(path)
                if self.importer.clock() - self.last_report >= self.importer.progress_interval_s:
                    self.last_report = self.importer.clock()
                    await self._report(operation_pb2.OPERATION_STATE_RUNNING)

        try:
            async with asyncio.TaskGroup() as group:
                for path in paths:
                    group.create_task(index_one(path))
        except ExceptionGroup as failed:
            # The first failure stops the run (the rest were cancelled by it);
            # its type decides between a retry and a failed operation.
            raise failed.exceptions[0] from None
        await store.optimize(spec.collection_id)
        self.summary.state = operation_pb2.OPERATION_STATE_SUCCEEDED
        await self._report(operation_pb2.OPERATION_STATE_SUCCEEDED)
        log.info(
            "%s: %d documents indexed, %d failed, %d chunks",
            self.operation_name,
            self.summary.documents_done,
            self.summary.documents_failed,
            self.summary.chunks_done,
        )

    async def _index(self, path: Path) -> None:
        source = await asyncio.to_thread(read_source, path)
        self.summary.bytes_done += source.size
        try:
            if source.error:
                raise DocumentError(source.error)
            chunk_count = await self._index_text(source)
        except DocumentError as exc:
            await self._record_failure(source, str(exc))
            return
        self.summary.documents_done += 1
        self.summary.chunks_done += chunk_count

    async def _index_text(self, source: SourceFile) -> int:
        importer, spec = self.importer, self.spec
        chunks: list[Chunk] = []
        try:
            if source.text:
                spans = await importer.embedder.tokenize(source.text)
                try:
                    chunks = chunk_text(
                        source.text,
                        spans.starts,
                        spans.ends,
                        spec.chunk_tokens,
                        spec.overlap_tokens,
                    )
                except ValueError as exc:  # token offsets that do not fit the text
                    raise DocumentError(f"bad tokenization: {exc}") from exc
            ids = [
                chunk_id(spec.collection_id, source.path, source.content_hash, chunk.index)
                for chunk in chunks
            ]
            for first in range(0, len(chunks), importer.embed_batch_texts):
                batch = chunks[first : first + importer.embed_batch_texts]
                texts = [c.text for c in batch]
                vectors = await importer.embedder.embed_documents(texts)
                self._check_vectors(vectors, len(batch))
                # BM25 terms of each chunk (textkit), off the event loop.
                terms = await asyncio.to_thread(_batch_terms, texts)
                points = [
                    VectorPoint(
                        chunk_id=ids[chunk.index],
                        vector=vector,
                        payload=_chunk_payload(spec.collection_id, ids[chunk.index], source),
                        terms=chunk_terms,
                    )
                    for chunk, vector, chunk_terms in zip(batch, vectors, terms, strict=True)
                ]
                await importer.store.upsert(spec.collection_id, points)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _DOCUMENT_CODES:
                raise DocumentError(f"rejected by the embedder: {exc.details()}") from exc
            raise
        records = [
            metadata_pb2.ChunkRecord(
                chunk_id=ids[chunk.index],
                chunk_index=chunk.index,
                text=chunk.text,
                start_offset=chunk.start,
                end_offset=chunk.end,
                token_count=chunk.token_count,
            )
            for chunk in chunks
        ]
        document = _document(source, document_pb2.DOCUMENT_STATE_INDEXED, len(chunks))
        await self._write_document(document, records, keep=set(ids))
        return len(chunks)

    def _check_vectors(self, vectors: list[list[float]], expected: int) -> None:
        if len(vectors) != expected:
            raise FatalImportError(f"embedder returned {len(vectors)} vectors for {expected} texts")
        for vector in vectors:
            if len(vector) != self.dimensions:
                raise FatalImportError(
                    f"embedder returns {len(vector)} dimensions, the collection has "
                    f"{self.dimensions}"
                )

    async def _write_document(
        self, document: document_pb2.Document, records: list[Any], keep: set[str]
    ) -> None:
        replaced = await self.importer.metadata.upsert_document(
            metadata_pb2.UpsertDocumentRequest(
                collection_id=self.spec.collection_id, document=document, chunks=records
            )
        )
        # A re-import of unchanged content replaces chunks by themselves.
        stale = [chunk for chunk in replaced if chunk not in keep]
        await self.importer.store.delete_points(self.spec.collection_id, stale)

    async def _record_failure(self, source: SourceFile, reason: str) -> None:
        log.info("%s: %s not indexed: %s", self.operation_name, source.path, reason)
        self.summary.documents_failed += 1
        self.summary.errors.append((source.path, reason))
        self.unsent_errors.append((source.path, reason))
        document = _document(source, document_pb2.DOCUMENT_STATE_FAILED, 0, error=reason)
        await self._write_document(document, [], keep=set())

    def _progress(self) -> operation_pb2.OperationProgress:
        s = self.summary
        return operation_pb2.OperationProgress(
            documents_total=s.documents_total,
            documents_done=s.documents_done,
            documents_failed=s.documents_failed,
            chunks_done=s.chunks_done,
            bytes_done=s.bytes_done,
        )

    async def _report(self, state: operation_pb2.OperationState, error_message: str = "") -> None:
        errors = [
            operation_pb2.DocumentError(source_path=path, reason=reason)
            for path, reason in self.unsent_errors
        ]
        await self.importer.metadata.update_operation(
            metadata_pb2.UpdateOperationRequest(
                name=self.operation_name,
                state=state,
                progress=self._progress(),
                document_errors=errors,
                error_message=error_message,
            )
        )
        self.unsent_errors.clear()
        self.last_report = self.importer.clock()

    async def _fail(self, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, FatalImportError) else _describe(exc)
        log.error("%s failed: %s", self.operation_name, message, exc_info=exc)
        self.summary.state = operation_pb2.OPERATION_STATE_FAILED
        self.summary.error_message = message
        try:
            await self._report(operation_pb2.OPERATION_STATE_FAILED, message)
        except Exception:
            # Nothing more to do here: the operation stays RUNNING in metadata.
            log.exception("%s: cannot record the failure", self.operation_name)


def _batch_terms(texts: Sequence[str]) -> list[dict[int, int]]:
    return [sparse.document_terms(text) for text in texts]


def _chunk_payload(collection_id: str, chunk: str, source: SourceFile) -> dict[str, Any]:
    """What a chunk's point carries: its ids, and what search filters read
    (`page` too once documents with pages are imported; text files have none)."""
    return {
        "collection_id": collection_id,
        "chunk_id": chunk,
        PAYLOAD_SOURCE_PATH: source.path,
        PAYLOAD_MIME_TYPE: source.mime_type,
        PAYLOAD_MODIFIED_AT: epoch_seconds(source.mtime_ns),
    }


def _document(
    source: SourceFile,
    state: document_pb2.DocumentState,
    chunk_count: int,
    error: str = "",
) -> document_pb2.Document:
    modify_time = timestamp_pb2.Timestamp()
    if source.mtime_ns:
        modify_time.FromNanoseconds(source.mtime_ns)
    return document_pb2.Document(
        source_path=source.path,
        content_hash=source.content_hash,
        size_bytes=source.size,
        mime_type=source.mime_type,
        state=state,
        error=error,
        chunk_count=chunk_count,
        modify_time=modify_time,
    )


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _TRANSIENT_CODES


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"
