"""The importer's side of operation control: cancelling, per-document
retries with backoff, dead letters, retry runs, totals and the estimate
(a real Edge store; fakes of the embedder and metadata)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import document_pb2, operation_pb2
from services.indexer import ingest, reading
from services.indexer.chunking import Strategy
from services.indexer.edge_store import EdgeVectorStore
from services.indexer.ingest import Importer, ImportSpec, TransientImportError
from tests.documents import Attachment, write_eml
from tests.indexer.conftest import DIMS, FakeEmbedder, FakeMetadata

POISON = "poison"
CANCELLED = operation_pb2.OPERATION_STATE_CANCELLED
SUCCEEDED = operation_pb2.OPERATION_STATE_SUCCEEDED


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(12):
        words = " ".join(f"word{i}x{j}" for j in range(30 + i))
        (root / f"doc{i:02d}.txt").write_text(words, encoding="utf-8")
    return root


def folder_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in sorted(root.glob("*")))


def spec(root: Path, **fields: Any) -> ImportSpec:
    return ImportSpec("op-1", "books", str(root), 20, 5, strategy=Strategy.FIXED, **fields)


def importer(
    store: EdgeVectorStore, embedder: FakeEmbedder, metadata: FakeMetadata, **options: Any
) -> Importer:
    options.setdefault("retry_base_s", 0.001)
    return Importer(store, embedder, metadata, embed_batch_texts=4, **options)  # type: ignore[arg-type]


class CancelAfter(FakeMetadata):
    """CancelOperation arrives once `reports` progress reports were sent."""

    def __init__(self, reports: int) -> None:
        super().__init__()
        self.reports = reports

    async def update_operation(
        self, request: metadata_pb2.UpdateOperationRequest
    ) -> operation_pb2.Operation:
        self.cancel_requested = len(self.updates) + 1 >= self.reports
        return await super().update_operation(request)


async def test_cancel_stops_after_the_documents_in_flight(
    edge_store: EdgeVectorStore, folder: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    metadata = CancelAfter(reports=3)
    run = importer(
        edge_store, FakeEmbedder(), metadata, document_concurrency=1, progress_interval_s=0
    )
    summary = await run.run(spec(folder))
    assert summary.state == CANCELLED
    assert metadata.updates[-1].state == CANCELLED
    # The scan's report and two documents' reports; the second one's answer
    # says cancel: the document in flight finished, no other started.
    assert summary.documents_done == 2
    assert summary.documents_total == 12
    indexed = [stored for stored in metadata.documents.values()]
    assert len(indexed) == 2
    # Each indexed document whole: its chunks in metadata and in the store.
    assert all(s.document.chunk_count == len(s.chunks) > 0 for s in indexed)
    assert await edge_store.count("books") == sum(len(s.chunks) for s in indexed)


class AlreadyDone(FakeMetadata):
    async def update_operation(
        self, request: metadata_pb2.UpdateOperationRequest
    ) -> operation_pb2.Operation:
        raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "the operation is done (CANCELLED)")


async def test_an_operation_cancelled_while_queued_does_nothing(
    edge_store: EdgeVectorStore, folder: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    embedder, metadata = FakeEmbedder(), AlreadyDone()
    summary = await importer(edge_store, embedder, metadata).run(spec(folder))
    assert summary.state == CANCELLED
    assert not embedder.tokenized
    assert not metadata.documents
    assert await edge_store.count("books") == 0


class PoisonEmbedder(FakeEmbedder):
    """INTERNAL for any batch with the poison word in it, `failures` times
    (every time when None); counts the tries."""

    def __init__(self, failures: int | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.poisoned_calls = 0

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if any(POISON in text for text in texts):
            self.poisoned_calls += 1
            if self.failures is None or self.poisoned_calls <= self.failures:
                raise rpc_error(grpc.StatusCode.INTERNAL, "model crashed")
        return await super().embed_documents(texts)


async def test_a_document_that_keeps_failing_is_a_dead_letter(
    edge_store: EdgeVectorStore, folder: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    poisoned = folder / "doc05.txt"
    poisoned.write_text(f"some words and {POISON} here", encoding="utf-8")
    embedder, metadata = PoisonEmbedder(), FakeMetadata()
    summary = await importer(edge_store, embedder, metadata).run(spec(folder))
    assert summary.state == SUCCEEDED
    assert embedder.poisoned_calls == ingest.DOCUMENT_ATTEMPTS
    assert summary.dead_letters == [(str(poisoned), "INTERNAL: model crashed", 3)]
    assert summary.errors == []  # not a content error
    assert (summary.documents_done, summary.documents_failed) == (11, 1)
    sent = [(d.source_path, d.attempts) for u in metadata.updates for d in u.dead_letters]
    assert sent == [(str(poisoned), 3)]  # sent once
    stored = metadata.documents[str(poisoned)].document
    assert stored.state == document_pb2.DOCUMENT_STATE_FAILED
    assert stored.error == "INTERNAL: model crashed"
    # Totals agree at the end; the dead letter's chunks are not counted.
    last = metadata.updates[-1].progress
    assert last.chunks_total == last.chunks_done == summary.chunks_done
    assert last.bytes_done == last.bytes_total == folder_bytes(folder)

    # Retried alone (RetryOperation), with the embedder mended: only that file is read.
    mended, retry_metadata = FakeEmbedder(), FakeMetadata()
    retry_metadata.documents = metadata.documents
    retried = await importer(edge_store, mended, retry_metadata).run(
        spec(folder, retry_paths=(str(poisoned),))
    )
    assert retried.state == SUCCEEDED
    assert mended.tokenized == [poisoned.read_text(encoding="utf-8")]
    assert (retried.documents_total, retried.documents_done, retried.dead_letters) == (1, 1, [])
    assert metadata.documents[str(poisoned)].document.state == document_pb2.DOCUMENT_STATE_INDEXED
    assert len(metadata.documents) == 12  # nothing else removed


async def test_a_document_that_fails_twice_then_works_is_indexed(
    edge_store: EdgeVectorStore, folder: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    (folder / "doc03.txt").write_text(f"flaky {POISON} text", encoding="utf-8")
    embedder, metadata = PoisonEmbedder(failures=2), FakeMetadata()
    summary = await importer(edge_store, embedder, metadata).run(spec(folder))
    assert embedder.poisoned_calls == 3
    assert (summary.documents_done, summary.documents_failed, summary.dead_letters) == (12, 0, [])
    assert summary.chunks_total == summary.chunks_done == await edge_store.count("books")


async def test_an_extractor_crash_is_a_dead_letter(
    edge_store: EdgeVectorStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await edge_store.create_collection("books", DIMS)
    crashing = folder / "doc07.txt"
    real_read = reading.read_file
    tries: list[Path] = []

    def read_file(path: Path, *args: Any) -> Any:
        if path == crashing:
            tries.append(path)
            raise RecursionError("maximum recursion depth exceeded")
        return real_read(path, *args)

    monkeypatch.setattr(ingest, "read_file", read_file)
    metadata = FakeMetadata()
    summary = await importer(edge_store, FakeEmbedder(), metadata).run(spec(folder))
    assert len(tries) == 3
    assert summary.dead_letters == [
        (str(crashing), "RecursionError: maximum recursion depth exceeded", 3)
    ]
    assert summary.documents_done == 11
    assert metadata.documents[str(crashing)].document.state == document_pb2.DOCUMENT_STATE_FAILED


class DownEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, "embedder down")


async def test_an_unavailable_service_is_retried_then_left_to_the_queue(
    edge_store: EdgeVectorStore, folder: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    embedder, metadata = DownEmbedder(), FakeMetadata()
    run = importer(edge_store, embedder, metadata, document_concurrency=1)
    with pytest.raises(TransientImportError):
        await run.run(spec(folder), final_try=False)
    # One document, tried three times with backoff; not a dead letter.
    assert embedder.calls == 3
    assert not any(u.dead_letters for u in metadata.updates)
    assert not metadata.documents


async def test_a_retry_reads_a_mail_for_its_attachment_and_removes_gone_files(
    edge_store: EdgeVectorStore, tmp_path: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    root = tmp_path / "mail"
    root.mkdir()
    mail = write_eml(
        root / "note.eml",
        "Quarterly note",
        "the body of the note",
        attachments=[Attachment("plan.txt", b"the attached plan text", "text/plain")],
    )
    gone = root / "gone.txt"
    gone.write_text("soon gone", encoding="utf-8")
    (root / "other.txt").write_text("another file", encoding="utf-8")
    metadata = FakeMetadata()
    await importer(edge_store, FakeEmbedder(), metadata).run(spec(root))
    attachment = f"{mail}#attachments/1/plan.txt"
    assert attachment in metadata.documents
    gone.unlink()

    embedder = FakeEmbedder()
    summary = await importer(edge_store, embedder, metadata).run(
        spec(root, retry_paths=(attachment, str(gone)))
    )
    assert summary.state == SUCCEEDED
    # The mail was read (changed or not) for its attachment; other.txt was not.
    assert len(embedder.tokenized) == 2
    assert "the body of the note" in embedder.tokenized[0]
    assert embedder.tokenized[1] == "the attached plan text"
    assert summary.documents_removed == 1
    assert str(gone) not in metadata.documents
    assert str(root / "other.txt") in metadata.documents


async def test_reports_carry_totals_and_an_estimate(
    edge_store: EdgeVectorStore, folder: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    metadata = FakeMetadata()
    run = importer(
        edge_store,
        FakeEmbedder(),
        metadata,
        document_concurrency=1,
        progress_interval_s=0,
        clock=clock,
    )
    summary = await run.run(spec(folder))
    first, *middle, last = metadata.updates
    assert first.progress.bytes_total == folder_bytes(folder)
    assert not first.progress.HasField("eta")  # no file finished yet
    assert all(u.progress.HasField("eta") for u in middle)
    etas = [u.progress.eta.ToNanoseconds() for u in middle]
    assert etas[-1] < etas[0]
    assert last.state == SUCCEEDED
    assert not last.progress.HasField("eta")
    assert last.progress.chunks_total == summary.chunks_done


def test_estimate_remaining() -> None:
    assert ingest.estimate_remaining(0, 100, 5.0) is None
    eta = ingest.estimate_remaining(25, 100, 10.0)
    assert eta is not None
    assert eta.ToMilliseconds() == 30_000  # 75 bytes left at 2.5 bytes/s
    done = ingest.estimate_remaining(100, 100, 10.0)
    assert done is not None
    assert done.ToNanoseconds() == 0
