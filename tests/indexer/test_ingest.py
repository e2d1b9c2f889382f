"""The import pipeline over a generated folder, with fakes of the embedder and metadata."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest

from semantik.internal.v1 import indexer_pb2
from semantik.v1 import document_pb2, operation_pb2
from services.indexer import sparse
from services.indexer.chunking import Strategy
from services.indexer.edge_store import EdgeVectorStore
from services.indexer.ingest import (
    Importer,
    ImportSpec,
    TransientImportError,
    chunk_id,
)
from services.indexer.source_paths import MISSING_INSIDE, OUTSIDE, PathGuard
from services.indexer.vector_store import PayloadFilter, SearchMode, VectorQuery, epoch_seconds
from tests.indexer.conftest import DIMS, FakeEmbedder, FakeMetadata, embed, make_unlistable

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def prose(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * (seed + 3)) % len(WORDS)] + str(i) for i in range(words))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "nested" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text(prose(1, 95), encoding="utf-8")
    (root / "b.md").write_text("# Title\n\n" + prose(2, 40), encoding="utf-8")
    (root / "nested" / "deep" / "c.TXT").write_text(prose(3, 10), encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "skip.pdf").write_bytes(b"%PDF")
    (root / "notes.rst").write_text("not indexed", encoding="utf-8")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret words outside the folder", encoding="utf-8")
    (root / "escape.txt").symlink_to(outside)
    (root / "inside-link.md").symlink_to(root / "b.md")
    (tmp_path / "outside-dir").mkdir()
    (tmp_path / "outside-dir" / "x.txt").write_text("more secrets", encoding="utf-8")
    (root / "linked-dir").symlink_to(tmp_path / "outside-dir")
    return root


def spec(root: Path, operation_id: str = "op-1", chunk_tokens: int = 20) -> ImportSpec:
    # Fixed windows, so the tests can count tokens per chunk.
    return ImportSpec(
        operation_id, "books", str(root), chunk_tokens, overlap_tokens=5, strategy=Strategy.FIXED
    )


def make_importer(
    store: EdgeVectorStore, embedder: object, metadata: FakeMetadata, batch: int = 4
) -> Importer:
    return Importer(store, embedder, metadata, embed_batch_texts=batch)  # type: ignore[arg-type]


async def test_import_indexes_documents_and_reports(
    edge_store: EdgeVectorStore, source: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    embedder, metadata = FakeEmbedder(), FakeMetadata()
    summary = await make_importer(edge_store, embedder, metadata).run(spec(source))

    assert summary.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    # 7 files read (a.txt, b.md, c.TXT, empty.txt, inside-link.md, latin1.txt,
    # skip.pdf) and 2 links out of the folder that are refused.
    assert (summary.documents_total, summary.documents_done, summary.documents_failed) == (9, 5, 4)
    reasons = dict(summary.errors)
    assert reasons[str(source / "latin1.txt")] == "not valid UTF-8 text: invalid byte at offset 3"
    assert reasons[str(source / "skip.pdf")] == "not a PDF file (no %PDF header)"
    assert "outside" in reasons[str(source / "escape.txt")]
    assert "outside" in reasons[str(source / "linked-dir")]
    assert len(reasons) == 4

    first, last = metadata.updates[0], metadata.updates[-1]
    assert first.name == "operations/op-1"
    assert first.state == operation_pb2.OPERATION_STATE_RUNNING
    assert first.progress.documents_total == 9
    assert last.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    assert last.progress.documents_done == 5
    assert last.progress.documents_failed == 4
    assert last.progress.chunks_done == summary.chunks_done
    sent_errors = [e.source_path for u in metadata.updates for e in u.document_errors]
    assert sorted(sent_errors) == sorted(reasons)  # each error sent once
    read = ["a.txt", "b.md", "nested/deep/c.TXT", "empty.txt", "latin1.txt", "skip.pdf"]
    total_bytes = sum((source / name).stat().st_size for name in [*read, "inside-link.md"])
    assert last.progress.bytes_done == total_bytes

    a = metadata.documents[str(source / "a.txt")]
    assert a.collection_id == "books"
    assert a.document.state == document_pb2.DOCUMENT_STATE_INDEXED
    assert a.document.mime_type == "text/plain"
    assert a.document.size_bytes == (source / "a.txt").stat().st_size
    # To the microsecond, as metadata keeps it.
    mtime_us = (source / "a.txt").stat().st_mtime_ns // 1000
    assert a.document.modify_time.ToNanoseconds() == mtime_us * 1000
    assert len(a.document.content_hash) == 64
    # 95 tokens, 20 per chunk, stride 15: windows start at 0, 15, ..., 75.
    assert [c.token_count for c in a.chunks] == [20, 20, 20, 20, 20, 20]
    text = (source / "a.txt").read_text(encoding="utf-8")
    for record in a.chunks:
        assert text[record.start_offset : record.end_offset] == record.text
        assert record.chunk_id == chunk_id(
            "books", str(source / "a.txt"), a.document.content_hash, record.chunk_index
        )
    assert metadata.documents[str(source / "b.md")].document.mime_type == "text/markdown"

    empty = metadata.documents[str(source / "empty.txt")]
    assert empty.document.state == document_pb2.DOCUMENT_STATE_INDEXED
    assert empty.document.chunk_count == 0
    failed = metadata.documents[str(source / "latin1.txt")]
    assert failed.document.state == document_pb2.DOCUMENT_STATE_FAILED
    assert failed.document.error.startswith("not valid UTF-8")
    escaped = metadata.documents[str(source / "escape.txt")]
    assert escaped.document.state == document_pb2.DOCUMENT_STATE_FAILED
    assert not failed.chunks

    assert await edge_store.count("books") == summary.chunks_done
    assert max(embedder.embed_calls) <= 4
    # Every chunk's vector is stored under its id: it is its own nearest neighbour.
    for record in a.chunks:
        hits = await edge_store.search("books", VectorQuery(limit=1, vector=embed(record.text)))
        assert hits[0].chunk_id == record.chunk_id
    assert not any("secret" in t for t in embedder.tokenized)


async def test_import_again_is_idempotent(edge_store: EdgeVectorStore, source: Path) -> None:
    await edge_store.create_collection("books", DIMS)
    metadata = FakeMetadata()
    importer = make_importer(edge_store, FakeEmbedder(), metadata)
    first = await importer.run(spec(source))
    ids_before = {p: [c.chunk_id for c in d.chunks] for p, d in metadata.documents.items()}
    second = await importer.run(spec(source, "op-2"))
    ids_after = {p: [c.chunk_id for c in d.chunks] for p, d in metadata.documents.items()}
    assert ids_after == ids_before
    # What is indexed is not embedded again; the failed files are read again.
    assert (second.chunks_done, second.documents_unchanged) == (0, first.documents_done)
    assert second.documents_failed == first.documents_failed
    assert await edge_store.count("books") == first.chunks_done


async def test_changed_document_replaces_its_vectors(
    edge_store: EdgeVectorStore, source: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    metadata = FakeMetadata()
    importer = make_importer(edge_store, FakeEmbedder(), metadata)
    await importer.run(spec(source))
    old = [c.chunk_id for c in metadata.documents[str(source / "a.txt")].chunks]
    count_before = await edge_store.count("books")
    (source / "a.txt").write_text(prose(9, 30), encoding="utf-8")  # 30 tokens: 2 chunks
    await importer.run(spec(source, "op-2"))
    new = [c.chunk_id for c in metadata.documents[str(source / "a.txt")].chunks]
    assert len(new) == 2
    assert not set(old) & set(new)
    assert await edge_store.count("books") == count_before - len(old) + len(new)
    hits = await edge_store.search("books", VectorQuery(limit=100, vector=embed(prose(1, 95))))
    assert not set(old) & {h.chunk_id for h in hits}


async def test_progress_is_throttled(edge_store: EdgeVectorStore, source: Path) -> None:
    await edge_store.create_collection("books", DIMS)
    now = [0.0]

    def clock() -> float:
        now[0] += 0.1  # every reading of the clock advances it 0.1 s
        return now[0]

    metadata = FakeMetadata()
    importer = Importer(
        edge_store,
        FakeEmbedder(),
        metadata,
        embed_batch_texts=4,
        progress_interval_s=0.25,
        clock=clock,
    )
    await importer.run(spec(source))
    states = [u.state for u in metadata.updates]
    assert states[0] == states[1] == operation_pb2.OPERATION_STATE_RUNNING
    assert states[-1] == operation_pb2.OPERATION_STATE_SUCCEEDED
    # 6 documents, one clock reading each: reports after the 3rd and 6th, not after each.
    assert len(states) == 4
    done = [u.progress.documents_done + u.progress.documents_failed for u in metadata.updates]
    assert done == sorted(done)


async def test_missing_collection_fails_the_operation(
    edge_store: EdgeVectorStore, source: Path
) -> None:
    metadata = FakeMetadata()
    summary = await make_importer(edge_store, FakeEmbedder(), metadata).run(spec(source))
    assert summary.state == operation_pb2.OPERATION_STATE_FAILED
    assert metadata.updates[-1].state == operation_pb2.OPERATION_STATE_FAILED
    assert "does not exist" in metadata.updates[-1].error_message


class DownEmbedder(FakeEmbedder):
    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "embedder down"
        )


async def test_unavailable_embedder_retries_then_fails(
    edge_store: EdgeVectorStore, source: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    metadata = FakeMetadata()
    importer = make_importer(edge_store, DownEmbedder(), metadata)
    with pytest.raises(TransientImportError):
        await importer.run(spec(source), final_try=False)
    assert all(u.state == operation_pb2.OPERATION_STATE_RUNNING for u in metadata.updates)

    summary = await importer.run(spec(source), final_try=True)
    assert summary.state == operation_pb2.OPERATION_STATE_FAILED
    assert metadata.updates[-1].error_message == "UNAVAILABLE: embedder down"


class RejectingEmbedder(FakeEmbedder):
    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if any("Title" in t for t in texts):
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), "no"
            )
        return await super().embed_documents(texts)


async def test_rejected_document_is_a_document_error(
    edge_store: EdgeVectorStore, source: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    os.remove(source / "inside-link.md")
    metadata = FakeMetadata()
    summary = await make_importer(edge_store, RejectingEmbedder(), metadata).run(spec(source))
    assert summary.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    assert (str(source / "b.md"), "rejected by the embedder: no") in summary.errors
    # b.md, and the four the folder always fails (latin1.txt, skip.pdf, two links out).
    assert summary.documents_failed == 5


class GatedEmbedder(FakeEmbedder):
    """Counts how many embed calls are in flight at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)  # let other documents reach the embedder
        self.in_flight -= 1
        return await super().embed_documents(texts)


@pytest.mark.parametrize(("concurrency", "expected"), [(1, 1), (4, 4)])
async def test_documents_reach_the_embedder_together(
    edge_store: EdgeVectorStore, tmp_path: Path, concurrency: int, expected: int
) -> None:
    for number in range(12):
        (tmp_path / f"doc-{number:02}.txt").write_text(prose(number, 30), encoding="utf-8")
    await edge_store.create_collection("books", DIMS)
    embedder = GatedEmbedder()
    metadata = FakeMetadata()
    importer = Importer(
        edge_store,
        embedder,  # type: ignore[arg-type]
        metadata,  # type: ignore[arg-type]
        document_concurrency=concurrency,
    )
    summary = await importer.run(spec(tmp_path))
    assert summary.documents_done == 12
    assert len(metadata.documents) == 12
    assert embedder.most_in_flight == expected


async def test_import_writes_sparse_vectors_and_filter_payload(
    edge_store: EdgeVectorStore, source: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    metadata = FakeMetadata()
    await make_importer(edge_store, FakeEmbedder(), metadata).run(spec(source))
    a = metadata.documents[str(source / "a.txt")]
    # Every chunk is found by its own words, alone when the words are unique to it.
    for record in a.chunks:
        hits = await edge_store.search(
            "books",
            VectorQuery(limit=1, mode=SearchMode.SPARSE, terms=sparse.query_terms(record.text)),
        )
        assert hits[0].chunk_id == record.chunk_id
    shard = edge_store._shard("books")
    stored = shard.retrieve([a.chunks[0].chunk_id], True, False)[0].payload
    mtime_ns = (source / "a.txt").stat().st_mtime_ns
    assert stored["source_path"] == str(source / "a.txt")
    assert stored["mime_type"] == "text/plain"
    # The engine may round the stored float by an ulp (seen once: ...4575 vs ...4577).
    assert stored["modified_at"] == pytest.approx(epoch_seconds(mtime_ns), abs=1e-6)
    assert stored["bm25_dl"] == sum(sparse.document_terms(a.chunks[0].text).values())
    assert "page" not in stored  # text files have no pages
    # Filters over what ingest wrote.
    only_md = await edge_store.search(
        "books",
        VectorQuery(
            limit=100,
            vector=embed("x"),
            filter=PayloadFilter(mime_types=("text/markdown",), modified_after=0.0),
        ),
    )
    md_ids = {
        c.chunk_id
        for d in metadata.documents.values()
        for c in d.chunks
        if d.document.mime_type == "text/markdown"
    }
    assert {h.chunk_id for h in only_md} == md_ids


async def test_a_second_import_embeds_only_what_changed(
    edge_store: EdgeVectorStore, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    for name, seed in [("same.txt", 1), ("touched.txt", 2), ("moving.md", 3), ("gone.txt", 4)]:
        (root / name).write_text(prose(seed, 30), encoding="utf-8")
    (root / "edited.txt").write_text(prose(5, 30), encoding="utf-8")
    await edge_store.create_collection("books", DIMS)
    embedder, metadata = FakeEmbedder(), FakeMetadata()
    importer = make_importer(edge_store, embedder, metadata)
    first = await importer.run(spec(root))
    assert first.documents_done == 5
    moving_chunks = [c.chunk_id for c in metadata.documents[str(root / "moving.md")].chunks]
    gone_chunks = [c.chunk_id for c in metadata.documents[str(root / "gone.txt")].chunks]
    edited_before = len(metadata.documents[str(root / "edited.txt")].chunks)
    points_before = await edge_store.count("books")

    later = (root / "touched.txt").stat().st_mtime_ns + 5_000_000_000
    os.utime(root / "touched.txt", ns=(later, later))
    (root / "moving.md").rename(root / "sub" / "moved.md")
    (root / "gone.txt").unlink()
    (root / "edited.txt").write_text(prose(6, 30), encoding="utf-8")
    embedder.embed_calls.clear()
    second = await importer.run(spec(root, "op-2"))

    assert second.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    # same, touched and moved are unchanged; edited is read and embedded again.
    assert (second.documents_unchanged, second.documents_removed) == (3, 1)
    assert (second.documents_done, second.documents_total) == (4, 4)
    assert sum(embedder.embed_calls) == len(metadata.documents[str(root / "edited.txt")].chunks)
    assert str(root / "gone.txt") not in metadata.documents
    assert str(root / "moving.md") not in metadata.documents
    moved = metadata.documents[str(root / "sub" / "moved.md")]
    assert [c.chunk_id for c in moved.chunks] == moving_chunks
    touched = metadata.documents[str(root / "touched.txt")].document
    assert touched.modify_time.ToNanoseconds() == later // 1000 * 1000
    # The vectors followed: the removed file's are gone, the moved file's are
    # found under its new path, the touched file's under its new time.
    edited_after = len(metadata.documents[str(root / "edited.txt")].chunks)
    assert await edge_store.count("books") == (
        points_before - len(gone_chunks) - edited_before + edited_after
    )
    in_sub = await edge_store.search(
        "books",
        VectorQuery(
            limit=50, vector=embed("x"), filter=PayloadFilter(path_prefix=str(root / "sub"))
        ),
    )
    assert sorted(hit.chunk_id for hit in in_sub) == sorted(moving_chunks)
    recent = await edge_store.search(
        "books",
        VectorQuery(
            limit=50, vector=embed("x"), filter=PayloadFilter(modified_after=later / 1e9 - 1)
        ),
    )
    assert {hit.chunk_id for hit in recent} >= {
        c.chunk_id for c in metadata.documents[str(root / "touched.txt")].chunks
    }

    # Nothing changed since: a third import embeds nothing.
    embedder.embed_calls.clear()
    third = await importer.run(spec(root, "op-3"))
    assert (third.documents_unchanged, third.documents_done) == (4, 4)
    assert embedder.embed_calls == []


async def test_content_copied_back_where_it_moved_from_gets_its_own_ids(
    edge_store: EdgeVectorStore, tmp_path: Path
) -> None:
    """A moved file keeps the ids made from its old path; the same content at
    that old path again must not take them over."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text(prose(7, 30), encoding="utf-8")
    await edge_store.create_collection("books", DIMS)
    metadata = FakeMetadata()
    importer = make_importer(edge_store, FakeEmbedder(), metadata)
    await importer.run(spec(root))
    (root / "a.txt").rename(root / "b.txt")
    moved = await importer.run(spec(root, "op-2"))
    assert moved.documents_unchanged == 1
    (root / "a.txt").write_text(prose(7, 30), encoding="utf-8")  # the same content back
    copied = await importer.run(spec(root, "op-3"))
    assert copied.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    a = [c.chunk_id for c in metadata.documents[str(root / "a.txt")].chunks]
    b = [c.chunk_id for c in metadata.documents[str(root / "b.txt")].chunks]
    assert a and b and not set(a) & set(b)
    assert await edge_store.count("books") == len(a) + len(b)
    only_b = await edge_store.search(
        "books",
        VectorQuery(
            limit=50, vector=embed("x"), filter=PayloadFilter(path_prefix=str(root / "b.txt"))
        ),
    )
    assert sorted(hit.chunk_id for hit in only_b) == sorted(b)


async def test_a_narrower_import_leaves_other_files_indexed(
    edge_store: EdgeVectorStore, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "keep.txt").write_text(prose(1, 20), encoding="utf-8")
    (root / "notes.md").write_text(prose(2, 20), encoding="utf-8")
    await edge_store.create_collection("books", DIMS)
    metadata = FakeMetadata()
    importer = make_importer(edge_store, FakeEmbedder(), metadata)
    await importer.run(spec(root))
    narrower = dataclasses.replace(spec(root, "op-2"), include_globs=("**/*.md",))
    summary = await importer.run(narrower)
    assert summary.documents_removed == 0
    assert str(root / "keep.txt") in metadata.documents
    # A file that is really gone still leaves, whatever the globs.
    (root / "keep.txt").unlink()
    assert (
        await importer.run(dataclasses.replace(narrower, operation_id="op-3"))
    ).documents_removed == 1
    assert str(root / "keep.txt") not in metadata.documents


async def test_a_folder_that_cannot_be_listed_keeps_its_documents(
    edge_store: EdgeVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "docs"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "a.txt").write_text(prose(3, 20), encoding="utf-8")
    (root / "b.txt").write_text(prose(4, 20), encoding="utf-8")
    await edge_store.create_collection("books", DIMS)
    metadata = FakeMetadata()
    importer = make_importer(edge_store, FakeEmbedder(), metadata)
    await importer.run(spec(root))
    points = await edge_store.count("books")

    locked = str(root / "locked")
    make_unlistable(monkeypatch, locked)
    summary = await importer.run(spec(root, "op-2"))
    assert summary.errors == [(locked, "cannot list: Permission denied")]
    assert summary.documents_removed == 0
    kept = metadata.documents[str(root / "locked" / "a.txt")].document
    assert kept.state == document_pb2.DOCUMENT_STATE_INDEXED
    assert locked not in metadata.documents  # a folder is no document
    assert await edge_store.count("books") == points


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A registered source `shared` holding the folder `docs`, beside a
    private folder and the data directory."""
    tmp = Path(os.path.realpath(tmp_path))
    (tmp / "shared" / "docs").mkdir(parents=True)
    (tmp / "shared" / "docs" / "a.txt").write_text(prose(1, 20), encoding="utf-8")
    (tmp / "private").mkdir()
    (tmp / "private" / "secret.txt").write_text("secret words", encoding="utf-8")
    (tmp / "data" / "secrets").mkdir(parents=True)
    (tmp / "data" / "secrets" / "token.txt").write_text("secret token", encoding="utf-8")
    return tmp / "shared"


def rooted_importer(
    store: EdgeVectorStore, embedder: FakeEmbedder, metadata: FakeMetadata, data: Path
) -> Importer:
    guard = PathGuard.build(data_dir=str(data))
    return Importer(store, embedder, metadata, embed_batch_texts=4, guard=guard)  # type: ignore[arg-type]


def test_the_spec_carries_the_source_root() -> None:
    request = indexer_pb2.StartImportRequest(
        operation_id="op-1",
        collection_id="books",
        source_path="/srv/docs/a",
        source_root="/srv/docs",
        chunk_tokens=20,
    )
    assert ImportSpec.from_proto(request).source_root == "/srv/docs"


async def test_a_rooted_import_reads_the_real_folder_and_no_protected_one(
    edge_store: EdgeVectorStore, shared: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    docs = shared / "docs"
    (docs / "token.txt").symlink_to(shared.parent / "data" / "secrets" / "token.txt")
    (docs / "keys").symlink_to(shared.parent / "data" / "secrets", target_is_directory=True)
    alias = shared.parent / "alias"
    alias.symlink_to(shared, target_is_directory=True)
    embedder, metadata = FakeEmbedder(), FakeMetadata()
    importer = rooted_importer(edge_store, embedder, metadata, shared.parent / "data")
    rooted = dataclasses.replace(spec(alias / "docs"), source_root=str(alias))

    summary = await importer.run(rooted)

    assert summary.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    assert list(metadata.documents) == [str(docs / "a.txt")]  # the real path
    assert summary.errors == []  # the links into the data directory are not even named
    assert not any("secret" in text for text in embedder.tokenized)


@pytest.mark.parametrize(
    ("change", "reason"),
    [("swap-for-link-out", OUTSIDE), ("remove", MISSING_INSIDE)],
)
async def test_a_folder_no_longer_in_its_source_at_job_start_fails_the_operation(
    edge_store: EdgeVectorStore, shared: Path, change: str, reason: str
) -> None:
    await edge_store.create_collection("books", DIMS)
    docs = shared / "docs"
    rooted = dataclasses.replace(spec(docs), source_root=str(shared))
    # The request was checked; then, before the job starts, the folder goes.
    docs.rename(shared.parent / "moved")
    if change == "swap-for-link-out":
        docs.symlink_to(shared.parent / "private", target_is_directory=True)
    embedder, metadata = FakeEmbedder(), FakeMetadata()
    importer = rooted_importer(edge_store, embedder, metadata, shared.parent / "data")

    summary = await importer.run(rooted)

    assert summary.state == operation_pb2.OPERATION_STATE_FAILED
    message = f"the source folder cannot be imported: source_path: {reason}"
    assert summary.error_message == message
    assert [u.state for u in metadata.updates] == [operation_pb2.OPERATION_STATE_FAILED]
    assert metadata.updates[-1].error_message == message
    assert metadata.documents == {}
    assert embedder.tokenized == []


async def test_an_unrooted_import_of_a_protected_folder_fails(
    edge_store: EdgeVectorStore, shared: Path
) -> None:
    await edge_store.create_collection("books", DIMS)
    data = shared.parent / "data"
    embedder, metadata = FakeEmbedder(), FakeMetadata()
    importer = rooted_importer(edge_store, embedder, metadata, data)

    summary = await importer.run(spec(data / "secrets"))

    assert summary.state == operation_pb2.OPERATION_STATE_FAILED
    assert "protected folder" in summary.error_message
    assert metadata.documents == {}
    assert embedder.tokenized == []
