"""The import pipeline of one operation: a folder of documents into a collection.

The folder is checked again first (`source_paths`): with a source root,
it must still resolve inside it (a symlink swapped in since the request must
not lead the import elsewhere; the real folder is what is scanned); without
one, it must not be `/` or protected. Then it is scanned (`sources`: globs,
size limit, symlinks only inside it, protected folders left out). Per file:
read, hash and extract its text and structure (`reading`, `extraction`; a
mail's attachments are documents of their own), tokenize (embedder), chunk
by the collection's strategy (`chunking`), embed (embedder), write vectors,
write the document and its chunks with their page and heading (metadata),
then remove the vectors of the version it replaced. Vectors are written
before metadata so a document that metadata lists is always searchable; a
vector without metadata is skipped at hydration and overwritten by a retry,
since chunk ids derive from (collection, path, content hash, index).

Failures of one document (unreadable, corrupt, encrypted, a zip bomb, not
UTF-8, too large, a symlink out of the folder, rejected by the embedder) are
recorded on the operation and as a FAILED document, and the run goes on.
Parts left out of a document that was indexed (scanned pages without OCR)
are recorded on the operation and in the document's `error`.

Other failures while indexing one document (a service unavailable, an
extractor that crashes, a downstream's internal error) are tried again for
that document, up to `document_attempts` times with exponential backoff.
A document that still fails on an error of its own (not a service being
unavailable) is a dead letter: recorded as FAILED, listed with its reason
and tries in the operation's `dead_letters`, and the run goes on;
RetryOperation tries such documents again. A service that stays
unavailable stops the run: `TransientImportError`, so the job queue retries
it later; on the last try, and for anything else, the operation is FAILED.

Cancelling: every progress report's answer says whether CancelOperation was
called. Once it was, no document is started; those in flight finish (no
half-written document), and the operation ends CANCELLED. An operation
cancelled before its job started is done already, and the job does nothing.

A retry (`retry_paths`) reads only the files of those documents (a mail's
for an attachment), changed or not, and removes only those that are gone.

Empty files, and files with no tokens, are indexed with zero chunks: they are
valid documents with nothing to search, not errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import collection_pb2, document_pb2, operation_pb2
from services.indexer import sparse
from services.indexer.chunking import (
    Chunk,
    ChunkingSpec,
    Strategy,
    TokenSpans,
    split,
    split_semantic,
)
from services.indexer.extraction import DEFAULT_LIMITS, Limits, Ocr, supported_suffixes
from services.indexer.known import KnownFiles, as_stored, known_files, mail_of
from services.indexer.reading import SourceFile, failed, read_file
from services.indexer.source_paths import PathGuard, SourcePathError, resolve_import_folder
from services.indexer.sources import Scan, SourceRootError, scan_folder
from services.indexer.sync import ChangeSet, diff
from services.indexer.vector_store import (
    PAYLOAD_MIME_TYPE,
    PAYLOAD_MODIFIED_AT,
    PAYLOAD_PAGE,
    PAYLOAD_SOURCE_PATH,
    VectorPoint,
    VectorStore,
    epoch_seconds,
)

log = logging.getLogger(__name__)

# Scan and diff reasons ("cannot list: ...", "cannot stat: ...", "cannot
# read: ...") of a look that failed this time, as opposed to a refusal.
TRANSIENT_SCAN_PROBLEM = "cannot "

# The largest file an import reads (a request may ask for less).
MAX_FILE_BYTES = DEFAULT_LIMITS.max_bytes

STRATEGIES = {
    collection_pb2.CHUNKING_STRATEGY_UNSPECIFIED: Strategy.RECURSIVE,
    collection_pb2.CHUNKING_STRATEGY_RECURSIVE: Strategy.RECURSIVE,
    collection_pb2.CHUNKING_STRATEGY_MARKDOWN: Strategy.MARKDOWN,
    collection_pb2.CHUNKING_STRATEGY_FIXED_TOKENS: Strategy.FIXED,
    collection_pb2.CHUNKING_STRATEGY_SEMANTIC: Strategy.SEMANTIC,
}

PROGRESS_INTERVAL_S = 0.3
# Tries of one document before it is a dead letter (or, for a service that
# stays unavailable, before the run is retried by the queue), and the first
# backoff; each next one doubles, with jitter.
DOCUMENT_ATTEMPTS = 3
RETRY_BASE_S = 0.5

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


class Embedder(Protocol):
    async def tokenize(self, text: str) -> TokenSpans: ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


class Metadata(Protocol):
    async def update_operation(
        self, request: metadata_pb2.UpdateOperationRequest
    ) -> operation_pb2.Operation:
        """The operation as stored after the update."""
        ...

    async def upsert_document(self, request: metadata_pb2.UpsertDocumentRequest) -> list[str]:
        """Returns the chunk ids of the version it replaced."""
        ...

    async def list_documents(
        self, collection_id: str, path_prefix: str
    ) -> list[document_pb2.Document]: ...

    async def delete_documents(self, collection_id: str, paths: Sequence[str]) -> list[str]:
        """Returns the removed documents' chunk ids."""
        ...

    async def update_document_file(
        self, collection_id: str, path: str, new_path: str, mtime_ns: int
    ) -> None: ...


class TransientImportError(Exception):
    """The run stopped on a failure that a later try may not meet."""


class FatalImportError(Exception):
    """The run cannot go on; the message is the operation's error."""


class DocumentError(Exception):
    """One document cannot be indexed; the message is the reason."""


class DeadLetter(Exception):
    """One document kept failing on an error of its own; the message is the last."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.attempts = attempts


class OperationAlreadyDone(Exception):
    """The operation ended before this run reported (cancelled while queued)."""


@dataclass(frozen=True)
class ImportSpec:
    operation_id: str
    collection_id: str
    source_path: str
    chunk_tokens: int
    overlap_tokens: int
    strategy: Strategy = Strategy.RECURSIVE
    include_globs: tuple[str, ...] = ()
    exclude_globs: tuple[str, ...] = ()
    max_file_bytes: int = MAX_FILE_BYTES
    retry_paths: tuple[str, ...] = ()
    # The registered source `source_path` must lie in; empty: none (callers
    # from before sources, tests).
    source_root: str = ""

    @classmethod
    def from_proto(cls, request: Any) -> ImportSpec:
        return cls(
            operation_id=request.operation_id,
            collection_id=request.collection_id,
            source_path=request.source_path,
            chunk_tokens=request.chunk_tokens,
            overlap_tokens=request.overlap_tokens,
            strategy=STRATEGIES[request.chunking_strategy],
            include_globs=tuple(request.include_globs),
            exclude_globs=tuple(request.exclude_globs),
            max_file_bytes=min(request.max_file_bytes or MAX_FILE_BYTES, MAX_FILE_BYTES),
            retry_paths=tuple(request.retry_paths),
            source_root=request.source_root,
        )

    @property
    def chunking(self) -> ChunkingSpec:
        return ChunkingSpec(self.strategy, self.chunk_tokens, self.overlap_tokens)

    @property
    def limits(self) -> Limits:
        return dataclasses.replace(DEFAULT_LIMITS, max_bytes=self.max_file_bytes)


@dataclass
class ImportSummary:
    state: operation_pb2.OperationState
    documents_total: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    chunks_done: int = 0
    bytes_done: int = 0
    documents_unchanged: int = 0
    documents_removed: int = 0
    bytes_total: int = 0
    chunks_total: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    dead_letters: list[tuple[str, str, int]] = field(default_factory=list)
    error_message: str = ""


def chunk_id(collection_id: str, source_path: str, content_hash: str, index: int) -> str:
    name = f"{collection_id}\x00{source_path}\x00{content_hash}\x00{index}"
    return str(uuid.uuid5(CHUNK_NAMESPACE, name))


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
        ocr: Ocr | None = None,
        document_attempts: int = DOCUMENT_ATTEMPTS,
        retry_base_s: float = RETRY_BASE_S,
        guard: PathGuard | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.metadata = metadata
        self.embed_batch_texts = embed_batch_texts
        self.document_concurrency = document_concurrency
        self.progress_interval_s = progress_interval_s
        self.clock = clock
        # None: tesseract from the PATH when there is one (probed once).
        self.ocr = ocr
        self.document_attempts = document_attempts
        self.retry_base_s = retry_base_s
        # The folders no import reads; without one, the system folders.
        self.guard = guard if guard is not None else PathGuard.build()

    async def run(self, spec: ImportSpec, *, final_try: bool = True) -> ImportSummary:
        return await _Run(self, spec).run(final_try)


class _Run:
    def __init__(self, importer: Importer, spec: ImportSpec) -> None:
        self.importer = importer
        self.spec = spec
        self.summary = ImportSummary(state=operation_pb2.OPERATION_STATE_RUNNING)
        self.unsent_errors: list[tuple[str, str]] = []
        self.unsent_dead_letters: list[tuple[str, str, int]] = []
        self.cancel_requested = False
        self.scan_sizes: dict[str, int] = {}
        self.started = importer.clock()
        self.last_report = 0.0
        self.dimensions = 0
        self.known = KnownFiles({}, {})

    @property
    def operation_name(self) -> str:
        return f"operations/{self.spec.operation_id}"

    async def run(self, final_try: bool) -> ImportSummary:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise  # the worker stops; the queue runs the job again
        except OperationAlreadyDone:
            log.info("%s ended before its job ran; nothing to do", self.operation_name)
            self.summary.state = operation_pb2.OPERATION_STATE_CANCELLED
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
        folder = await asyncio.to_thread(self._folder)
        try:
            scan = await asyncio.to_thread(
                scan_folder,
                folder,
                supported_suffixes(),
                include=spec.include_globs,
                exclude=spec.exclude_globs,
                max_file_bytes=spec.max_file_bytes,
                guard=self.importer.guard,
            )
        except SourceRootError as exc:
            raise FatalImportError(str(exc)) from exc
        # What the collection already holds of this folder decides what is
        # read and embedded again: only new and changed files.
        self.known = known_files(
            await self.importer.metadata.list_documents(spec.collection_id, scan.root + "/")
        )
        if spec.retry_paths:
            scan, changes = self._retry_changes(scan)
        else:
            changes = await asyncio.to_thread(
                lambda: diff(as_stored(scan), self.known.in_scope(scan))
            )
        problems = dict(changes.problems)
        paths = [Path(path) for path in sorted(changes.added + changes.changed)]
        self.summary.documents_total = len(scan.files.keys() | problems.keys())
        self.scan_sizes = {str(path): scan.files[str(path)].size for path in paths}
        self.summary.bytes_total = sum(self.scan_sizes.values())
        try:
            await self._report(operation_pb2.OPERATION_STATE_RUNNING)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise OperationAlreadyDone() from exc
            raise
        await self._sync_unchanged(scan, changes)
        # Files the scan refused (too large, symlinks out of the folder or in
        # a loop) are documents that failed, with the scan's reason. What it
        # could not look at this time (a folder it could not list, a file it
        # could not stat) is reported, and an indexed version stays as it is.
        for problem_path, reason in sorted(problems.items()):
            if reason.startswith(TRANSIENT_SCAN_PROBLEM):
                self.summary.documents_failed += 1
                self._note(problem_path, reason)
            else:
                await self._record_failure(failed(problem_path, reason))
        # Several documents in flight at once: their embedding requests meet
        # in the embedder's batcher and share forward passes, where one
        # document at a time would send batches of one or two chunks.
        slots = asyncio.Semaphore(self.importer.document_concurrency)

        async def index_one(path: Path) -> None:
            async with slots:
                if self.cancel_requested:
                    return
                await self._index(path)
                if self.importer.clock() - self.last_report >= self.importer.progress_interval_s:
                    self.last_report = self.importer.clock()
                    await self._report(operation_pb2.OPERATION_STATE_RUNNING)

        try:
            async with asyncio.TaskGroup() as group:
                for path in paths:
                    group.create_task(index_one(path))
        except ExceptionGroup as stopped:
            # The first failure stops the run (the rest were cancelled by it);
            # its type decides between a retry and a failed operation.
            raise stopped.exceptions[0] from None
        await store.optimize(spec.collection_id)
        self.summary.state = (
            operation_pb2.OPERATION_STATE_CANCELLED
            if self.cancel_requested
            else operation_pb2.OPERATION_STATE_SUCCEEDED
        )
        await self._report(self.summary.state)
        log.info(
            "%s %s: %d documents indexed, %d failed, %d chunks",
            self.operation_name,
            operation_pb2.OperationState.Name(self.summary.state),
            self.summary.documents_done,
            self.summary.documents_failed,
            self.summary.chunks_done,
        )

    def _folder(self) -> str:
        """The folder to scan. With a source root, `source_path` is resolved
        inside it again now (the request was checked before the job was
        queued; a symlink swapped in since must not lead outside) and its
        real path is scanned. Without one, the scan refuses `/` and
        protected folders itself."""
        spec = self.spec
        if not spec.source_root:
            return spec.source_path
        try:
            _, folder = resolve_import_folder(
                spec.source_root, spec.source_path, self.importer.guard
            )
        except SourcePathError as exc:
            raise FatalImportError(f"the source folder cannot be imported: {exc}") from None
        return folder

    def _retry_changes(self, scan: Scan) -> tuple[Scan, ChangeSet]:
        """A retry's work: the files of the documents to retry, read whether
        changed or not; those gone from the folder leave the index."""
        wanted = {mail_of(path) or path for path in self.spec.retry_paths}
        problems = [(path, reason) for path, reason in scan.problems if path in wanted]
        refused = {path for path, _ in problems}
        files = {path: state for path, state in scan.files.items() if path in wanted}
        gone = [
            path
            for path in sorted(wanted - files.keys() - refused)
            if path in self.known.files and not os.path.lexists(path)
        ]
        narrowed = dataclasses.replace(scan, files=files, problems=problems)
        return narrowed, ChangeSet(changed=sorted(files), deleted=gone, problems=problems)

    async def _sync_unchanged(self, scan: Scan, changes: ChangeSet) -> None:
        """Brings the index to the folder without embedding anything: files
        that left it go, moved and touched files get their new path and
        modify time, unchanged ones are counted."""
        spec, store, metadata = self.spec, self.importer.store, self.importer.metadata
        gone = self.known.with_attachments(changes.deleted)
        if gone:
            chunk_ids = await metadata.delete_documents(spec.collection_id, gone)
            await store.delete_points(spec.collection_id, chunk_ids)
            self.summary.documents_removed += len(gone)
        renames = [(path, path) for path in changes.touched] + list(changes.moved)
        for old, new in renames:
            mtime_ns = scan.files[new].mtime_ns
            for attachment in self.known.attachments.get(old, []):
                await self._update_file(attachment, new + attachment[len(old) :], mtime_ns)
            await self._update_file(old, new, mtime_ns)
        # Known paths (a moved file's attachments are known under its old path).
        for path in [*changes.unchanged, *changes.touched, *(old for old, _ in changes.moved)]:
            count = 1 + len(self.known.attachments.get(path, []))
            self.summary.documents_unchanged += count
            self.summary.documents_done += count
            self.summary.documents_total += count - 1

    async def _update_file(self, path: str, new_path: str, mtime_ns: int) -> None:
        # Points first: if the metadata call fails, a retry finds the file
        # moved or touched again and repeats both (the points' update is
        # idempotent); the other order could leave the points' path stale.
        await self.importer.store.update_file(
            self.spec.collection_id, path, new_path, epoch_seconds(mtime_ns)
        )
        await self.importer.metadata.update_document_file(
            self.spec.collection_id, path, new_path, mtime_ns
        )

    async def _attempts(self, what: str, work: Callable[[], Awaitable[Any]]) -> Any:
        """`work()`, tried again after failures that are not the document's
        content (a DocumentError) or the run's (FatalImportError), with
        exponential backoff. Raises DeadLetter when it keeps failing on its
        own error; a service that stays unavailable is raised as it is."""
        importer = self.importer
        for attempt in range(1, importer.document_attempts + 1):
            try:
                return await work()
            except (DocumentError, FatalImportError, DeadLetter):
                raise
            except Exception as exc:
                if attempt == importer.document_attempts:
                    if _is_transient(exc):
                        raise
                    raise DeadLetter(_describe(exc), attempt) from exc
                delay = importer.retry_base_s * 2 ** (attempt - 1) * random.uniform(0.75, 1.25)
                log.warning(
                    "%s: %s failed (try %d of %d), again in %.1f s: %s",
                    self.operation_name,
                    what,
                    attempt,
                    importer.document_attempts,
                    delay,
                    _describe(exc),
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def _index(self, path: Path) -> None:
        """The file's documents: itself, and a mail's attachments."""
        try:
            sources: list[SourceFile] = await self._attempts(
                f"reading {path}",
                lambda: asyncio.to_thread(read_file, path, self.spec.limits, self.importer.ocr),
            )
        except DeadLetter as letter:
            await self._record_dead_letter(failed(str(path), str(letter)), letter.attempts)
            self.summary.bytes_done += self._scanned_size(path)
            return
        # Attachments the mail no longer has leave the index.
        stale = set(self.known.attachments.get(str(path), [])) - {s.path for s in sources}
        if stale:
            chunk_ids = await self.importer.metadata.delete_documents(
                self.spec.collection_id, sorted(stale)
            )
            await self.importer.store.delete_points(self.spec.collection_id, chunk_ids)
            self.summary.documents_removed += len(stale)
        # Attachments are documents beyond the scan's count.
        self.summary.documents_total += len(sources) - 1
        for source in sources:
            try:
                if source.error:
                    raise DocumentError(source.error)
                chunk_count = await self._attempts(
                    f"indexing {source.path}", functools.partial(self._index_text, source)
                )
            except DocumentError as exc:
                await self._record_failure(dataclasses.replace(source, error=str(exc)))
                continue
            except DeadLetter as letter:
                await self._record_dead_letter(
                    dataclasses.replace(source, error=str(letter)), letter.attempts
                )
                continue
            self.summary.documents_done += 1
            self.summary.chunks_done += chunk_count
            if source.skipped:
                self._note(source.path, "indexed without " + "; ".join(source.skipped))
        self.summary.bytes_done += self._scanned_size(path)

    def _scanned_size(self, path: Path) -> int:
        return self.scan_sizes.get(str(path), 0)

    async def _index_text(self, source: SourceFile) -> int:
        chunks: list[Chunk] = []
        if source.text:
            try:
                chunks = await self._chunks(source)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _DOCUMENT_CODES:
                    raise DocumentError(f"rejected by the embedder: {exc.details()}") from exc
                raise
        self.summary.chunks_total += len(chunks)
        try:
            return await self._write_chunks(source, chunks)
        except BaseException:
            self.summary.chunks_total -= len(chunks)  # tried again, or not indexed
            raise

    async def _write_chunks(self, source: SourceFile, chunks: list[Chunk]) -> int:
        importer, spec = self.importer, self.spec
        try:
            # Ids of the same content at the same path are the same, so a retried
            # job overwrites its own points; unless another document holds this
            # content, whose ids may come from this path (it was moved away).
            id_path = source.path
            if self.known.held_elsewhere(source.content_hash, source.path):
                id_path = f"{source.path}\0{spec.operation_id}"
            ids = [
                chunk_id(spec.collection_id, id_path, source.content_hash, chunk.index)
                for chunk in chunks
            ]
            places = [source.place(chunk.start) for chunk in chunks]
            pages = [page for page, _ in places]
            # A heading-aware strategy names each chunk's section itself.
            headings = [
                chunk.heading or heading for chunk, (_, heading) in zip(chunks, places, strict=True)
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
                        payload=_chunk_payload(
                            spec.collection_id, ids[chunk.index], source, pages[chunk.index]
                        ),
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
                page=pages[chunk.index],
                heading=headings[chunk.index],
            )
            for chunk in chunks
        ]
        document = _document(
            source,
            document_pb2.DOCUMENT_STATE_INDEXED,
            len(chunks),
            error="indexed without " + "; ".join(source.skipped) if source.skipped else "",
        )
        try:
            await self._write_document(document, records, keep=set(ids))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            # Something in this document that metadata refuses: its vectors go
            # again, and it is recorded as failed like any bad document.
            await importer.store.delete_points(spec.collection_id, ids)
            raise DocumentError(f"rejected by metadata: {exc.details()}") from exc
        return len(chunks)

    async def _chunks(self, source: SourceFile) -> list[Chunk]:
        """The text's chunks by the collection's strategy, on the model's own tokens."""
        spec = self.spec.chunking
        spans = await self.importer.embedder.tokenize(source.text)
        # Heading-aware chunking keeps to the sections a format's extractor
        # found: headings (DOCX, HTML, PDF outlines, slide titles) and pages.
        # Markdown is parsed by the chunker itself.
        boundaries: list[int] = []
        headings: list[str] = []
        if spec.strategy is Strategy.MARKDOWN and source.mime_type != "text/markdown":
            last: tuple[int, str] | None = None
            for section in source.sections:
                if (section.page, section.heading) != last:
                    boundaries.append(section.start)
                    headings.append(section.heading)
                    last = (section.page, section.heading)
        try:
            if spec.strategy is Strategy.SEMANTIC:
                return await split_semantic(
                    source.text, spans, spec, self.importer.embedder.embed_documents
                )
            return await asyncio.to_thread(
                split, source.text, spans, spec, boundaries=boundaries, headings=headings
            )
        except ValueError as exc:  # token offsets that do not fit the text
            raise DocumentError(f"bad tokenization: {exc}") from exc

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

    async def _record_failure(self, source: SourceFile) -> None:
        log.info("%s: %s not indexed: %s", self.operation_name, source.path, source.error)
        self._note(source.path, source.error)
        await self._write_failed(source)

    async def _record_dead_letter(self, source: SourceFile, attempts: int) -> None:
        log.warning(
            "%s: %s is a dead letter after %d tries: %s",
            self.operation_name,
            source.path,
            attempts,
            source.error,
        )
        letter = (source.path, source.error, attempts)
        self.summary.dead_letters.append(letter)
        self.unsent_dead_letters.append(letter)
        await self._write_failed(source)

    async def _write_failed(self, source: SourceFile) -> None:
        """Counts `source` failed and records it as a FAILED document (no chunks)."""
        self.summary.documents_failed += 1
        document = _document(source, document_pb2.DOCUMENT_STATE_FAILED, 0, error=source.error)
        await self._write_document(document, [], keep=set())

    def _note(self, path: str, reason: str) -> None:
        """A document error for the operation (sent with the next progress report)."""
        self.summary.errors.append((path, reason))
        self.unsent_errors.append((path, reason))

    def _progress(self, state: operation_pb2.OperationState) -> operation_pb2.OperationProgress:
        s = self.summary
        progress = operation_pb2.OperationProgress(
            documents_total=s.documents_total,
            documents_done=s.documents_done,
            documents_failed=s.documents_failed,
            chunks_done=s.chunks_done,
            bytes_done=s.bytes_done,
            documents_unchanged=s.documents_unchanged,
            documents_removed=s.documents_removed,
            bytes_total=s.bytes_total,
            chunks_total=s.chunks_total,
        )
        eta = estimate_remaining(s.bytes_done, s.bytes_total, self.importer.clock() - self.started)
        if state == operation_pb2.OPERATION_STATE_RUNNING and eta is not None:
            progress.eta.CopyFrom(eta)
        return progress

    async def _report(self, state: operation_pb2.OperationState, error_message: str = "") -> None:
        # Taken before the call: documents in flight add errors while it waits.
        unsent, self.unsent_errors = self.unsent_errors, []
        letters, self.unsent_dead_letters = self.unsent_dead_letters, []
        try:
            operation = await self.importer.metadata.update_operation(
                metadata_pb2.UpdateOperationRequest(
                    name=self.operation_name,
                    state=state,
                    progress=self._progress(state),
                    document_errors=[
                        operation_pb2.DocumentError(source_path=path, reason=reason, attempts=1)
                        for path, reason in unsent
                    ],
                    error_message=error_message,
                    dead_letters=[
                        operation_pb2.DocumentError(
                            source_path=path, reason=reason, attempts=attempts
                        )
                        for path, reason, attempts in letters
                    ],
                )
            )
        except BaseException:
            self.unsent_errors[:0] = unsent  # sent with the next report
            self.unsent_dead_letters[:0] = letters
            raise
        if operation.cancel_requested and not self.cancel_requested:
            log.info("%s: cancel requested; finishing the documents in flight", self.operation_name)
            self.cancel_requested = True
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


def estimate_remaining(
    bytes_done: int, bytes_total: int, elapsed_s: float
) -> duration_pb2.Duration | None:
    """Time left at the rate bytes were finished so far; None before the
    first file is finished."""
    if bytes_done <= 0 or elapsed_s <= 0:
        return None
    left_s = max(0, bytes_total - bytes_done) * elapsed_s / bytes_done
    eta = duration_pb2.Duration()
    eta.FromNanoseconds(round(left_s * 1e9))
    return eta


def _batch_terms(texts: Sequence[str]) -> list[dict[int, int]]:
    return [sparse.document_terms(text) for text in texts]


def _chunk_payload(collection_id: str, chunk: str, source: SourceFile, page: int) -> dict[str, Any]:
    """What a chunk's point carries: its ids, and what search filters read
    (`page` only for formats with pages)."""
    payload: dict[str, Any] = {
        "collection_id": collection_id,
        "chunk_id": chunk,
        PAYLOAD_SOURCE_PATH: source.path,
        PAYLOAD_MIME_TYPE: source.mime_type,
        PAYLOAD_MODIFIED_AT: epoch_seconds(source.mtime_ns),
    }
    if page:
        payload[PAYLOAD_PAGE] = page
    return payload


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
