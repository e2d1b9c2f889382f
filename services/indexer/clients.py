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
from services.indexer.chunking import TokenSpans

TOKENIZE_TIMEOUT_S = 60.0
# A batch of 64 chunks on a CPU-only embedder can take seconds.
EMBED_TIMEOUT_S = 120.0
METADATA_TIMEOUT_S = 30.0


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

    async def update_operation(self, request: metadata_pb2.UpdateOperationRequest) -> None:
        await self._stub.UpdateOperation(request, timeout=METADATA_TIMEOUT_S)

    async def upsert_document(self, request: metadata_pb2.UpsertDocumentRequest) -> list[str]:
        response = await self._stub.UpsertDocument(request, timeout=METADATA_TIMEOUT_S)
        return list(response.replaced_chunk_ids)
