"""The indexer's clients of the embedder and metadata services, over gRPC.

Thin adapters from the interfaces `ingest` needs to the generated stubs.
Import jobs have no caller deadline to inherit, so each call has its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from semantik.internal.v1 import (
    embedder_pb2,
    embedder_pb2_grpc,
    metadata_pb2,
    metadata_pb2_grpc,
)
from semantik.v1 import document_pb2, operation_pb2
from services.indexer.chunking import TokenSpans

TOKENIZE_TIMEOUT_S = 60.0
# A batch of 64 chunks on a CPU-only embedder can take seconds.
EMBED_TIMEOUT_S = 120.0
METADATA_TIMEOUT_S = 30.0
LIST_PAGE_SIZE = 1000


class EmbedderClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = embedder_pb2_grpc.EmbedderServiceStub(channel)

    async def tokenize(self, text: str) -> TokenSpans:
        response = await self._stub.Tokenize(
            embedder_pb2.TokenizeRequest(texts=[text]), timeout=TOKENIZE_TIMEOUT_S
        )
        tokens = response.tokenizations[0]
        return TokenSpans(starts=list(tokens.starts), ends=list(tokens.ends))

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        response = await self._stub.Embed(
            embedder_pb2.EmbedRequest(texts=list(texts), kind=embedder_pb2.INPUT_KIND_DOCUMENT),
            timeout=EMBED_TIMEOUT_S,
        )
        return [list(embedding.values) for embedding in response.embeddings]


class MetadataClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = metadata_pb2_grpc.MetadataServiceStub(channel)

    async def update_operation(
        self, request: metadata_pb2.UpdateOperationRequest
    ) -> operation_pb2.Operation:
        response = await self._stub.UpdateOperation(request, timeout=METADATA_TIMEOUT_S)
        return response.operation

    async def upsert_document(self, request: metadata_pb2.UpsertDocumentRequest) -> list[str]:
        response = await self._stub.UpsertDocument(request, timeout=METADATA_TIMEOUT_S)
        return list(response.replaced_chunk_ids)

    async def list_documents(
        self, collection_id: str, path_prefix: str
    ) -> list[document_pb2.Document]:
        documents: list[document_pb2.Document] = []
        token = ""
        while True:
            page = await self._stub.ListDocuments(
                metadata_pb2.ListDocumentsRequest(
                    parent=f"collections/{collection_id}",
                    page_size=LIST_PAGE_SIZE,
                    page_token=token,
                    path_prefix=path_prefix,
                ),
                timeout=METADATA_TIMEOUT_S,
            )
            documents.extend(page.documents)
            token = page.next_page_token
            if not token:
                return documents

    async def delete_documents(self, collection_id: str, paths: Sequence[str]) -> list[str]:
        chunk_ids: list[str] = []
        for first in range(0, len(paths), LIST_PAGE_SIZE):
            response = await self._stub.DeleteDocuments(
                metadata_pb2.DeleteDocumentsRequest(
                    collection_id=collection_id,
                    source_paths=list(paths[first : first + LIST_PAGE_SIZE]),
                ),
                timeout=METADATA_TIMEOUT_S,
            )
            chunk_ids.extend(response.chunk_ids)
        return chunk_ids

    async def update_document_file(
        self, collection_id: str, path: str, new_path: str, mtime_ns: int
    ) -> None:
        request = metadata_pb2.UpdateDocumentFileRequest(
            collection_id=collection_id, source_path=path, new_source_path=new_path
        )
        request.modify_time.FromNanoseconds(mtime_ns)
        await self._stub.UpdateDocumentFile(request, timeout=METADATA_TIMEOUT_S)
