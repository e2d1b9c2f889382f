"""Fixtures of the indexer's tests: a real Redis, Edge stores, in-test fakes."""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import document_pb2, operation_pb2
from semantik_runner.ports import free_port
from semantik_runner.stores import RedisServer
from services.indexer.chunking import TokenSpans
from services.indexer.edge_store import EdgeVectorStore

DIMS = 32


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis") / "data", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def edge_store(tmp_path: Path) -> AsyncIterator[EdgeVectorStore]:
    store = EdgeVectorStore(tmp_path / "vectors")
    await store.open()
    yield store
    await store.close()


def embed(text: str) -> list[float]:
    """Hashed bag of words, L2-normalised: equal texts embed equally and
    texts sharing words are near."""
    vector = [0.0] * DIMS
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class FakeEmbedder:
    """Whitespace tokens with their offsets; vectors from `embed`."""

    def __init__(self) -> None:
        self.embed_calls: list[int] = []
        self.tokenized: list[str] = []

    async def tokenize(self, text: str) -> TokenSpans:
        self.tokenized.append(text)
        matches = list(re.finditer(r"\S+", text))
        return TokenSpans([m.start() for m in matches], [m.end() for m in matches])

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.embed_calls.append(len(texts))
        return [embed(text) for text in texts]


class FakeMetadata:
    """Keeps documents by source path, like the metadata service does."""

    def __init__(self) -> None:
        self.updates: list[metadata_pb2.UpdateOperationRequest] = []
        # What the next report's answer says of CancelOperation.
        self.cancel_requested = False
        self.documents: dict[str, metadata_pb2.UpsertDocumentRequest] = {}

    async def update_operation(
        self, request: metadata_pb2.UpdateOperationRequest
    ) -> operation_pb2.Operation:
        self.updates.append(request)
        return operation_pb2.Operation(
            name=request.name, state=request.state, cancel_requested=self.cancel_requested
        )

    async def upsert_document(self, request: metadata_pb2.UpsertDocumentRequest) -> list[str]:
        # PostgreSQL keeps times to the microsecond.
        stored_ns = request.document.modify_time.ToNanoseconds() // 1000 * 1000
        request.document.modify_time.FromNanoseconds(stored_ns)
        previous = self.documents.get(request.document.source_path)
        self.documents[request.document.source_path] = request
        return [] if previous is None else [c.chunk_id for c in previous.chunks]

    async def list_documents(
        self, collection_id: str, path_prefix: str
    ) -> list[document_pb2.Document]:
        return [
            stored.document
            for path, stored in sorted(self.documents.items())
            if stored.collection_id == collection_id and path.startswith(path_prefix)
        ]

    async def delete_documents(self, collection_id: str, paths: Sequence[str]) -> list[str]:
        removed = [self.documents.pop(path) for path in paths if path in self.documents]
        return [chunk.chunk_id for stored in removed for chunk in stored.chunks]

    async def update_document_file(
        self, collection_id: str, path: str, new_path: str, mtime_ns: int
    ) -> None:
        stored = self.documents.pop(path)
        stored.document.source_path = new_path or path
        stored.document.modify_time.FromNanoseconds(mtime_ns // 1000 * 1000)
        self.documents[new_path or path] = stored


def make_unlistable(monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    """Listing `folder` fails as it would without permission (tests run as
    root, whom chmod does not lock out)."""
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.fspath(path) == folder:
            raise PermissionError(13, "Permission denied", folder)
        return real_scandir(path)

    monkeypatch.setattr("services.indexer.sources.os.scandir", scandir)
