"""CollectionService (proto/semantik/v1/collection.proto)."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from semantik.internal.v1 import embedder_pb2, indexer_pb2, metadata_pb2
from semantik.v1 import collection_pb2, collection_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.security import principal

Context = ServicerContext

DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 40
MIN_CHUNK_TOKENS = 16


class CollectionHandler(collection_pb2_grpc.CollectionServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

    async def CreateCollection(
        self, request: collection_pb2.CreateCollectionRequest, context: Context
    ) -> collection_pb2.Collection:
        violations = FieldViolations()
        validation.check_resource_id(request.collection_id, "collection_id", violations)
        if not request.HasField("collection"):
            violations.add("collection", "required")
        collection = request.collection
        validation.check_text(
            collection.display_name,
            "collection.display_name",
            violations,
            max_chars=200,
            required=False,
        )
        validation.check_text(
            collection.description,
            "collection.description",
            violations,
            max_chars=4000,
            required=False,
        )
        chunk_tokens = collection.chunking.chunk_tokens or DEFAULT_CHUNK_TOKENS
        # The default overlap is a fifth of the chunk, at most 40 tokens.
        overlap_tokens = collection.chunking.overlap_tokens or min(
            DEFAULT_OVERLAP_TOKENS, chunk_tokens // 5
        )
        if collection.chunking.chunk_tokens < 0:
            violations.add("collection.chunking.chunk_tokens", "must not be negative")
        if collection.chunking.overlap_tokens < 0:
            violations.add("collection.chunking.overlap_tokens", "must not be negative")
        strategy = collection.chunking.strategy or collection_pb2.CHUNKING_STRATEGY_RECURSIVE
        if strategy not in collection_pb2.ChunkingStrategy.values():
            violations.add(
                "collection.chunking.strategy",
                f"{strategy} is not a ChunkingStrategy "
                "(RECURSIVE, MARKDOWN, FIXED_TOKENS or SEMANTIC)",
            )
        violations.raise_if_any()

        info = await self._d.embedder.Info(
            embedder_pb2.InfoRequest(), timeout=remaining(context, self._timeout_s)
        )
        # Special tokens ([CLS], [SEP]) take two places of the model's limit.
        max_chunk_tokens = info.max_tokens - 2
        if not MIN_CHUNK_TOKENS <= chunk_tokens <= max_chunk_tokens:
            violations.add(
                "collection.chunking.chunk_tokens",
                f"must be {MIN_CHUNK_TOKENS}..{max_chunk_tokens} for model {info.model}",
            )
        elif overlap_tokens >= chunk_tokens:
            violations.add(
                "collection.chunking.overlap_tokens", "must be smaller than chunk_tokens"
            )
        violations.raise_if_any()

        name = f"collections/{request.collection_id}"
        record = collection_pb2.Collection(
            name=name,
            display_name=collection.display_name or request.collection_id,
            description=collection.description,
            chunking=collection_pb2.ChunkingConfig(
                chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, strategy=strategy
            ),
            embedding_model=info.model,
            embedding_dimensions=info.dimensions,
        )
        created = await self._d.metadata.CreateCollection(
            # The creator owns the collection (the grant is written with it).
            metadata_pb2.CreateCollectionRequest(
                collection=record, owner_user_id=principal.current().user_id
            ),
            timeout=remaining(context, self._timeout_s),
        )
        try:
            await self._d.indexer.CreateVectorCollection(
                indexer_pb2.CreateVectorCollectionRequest(
                    collection_id=request.collection_id, dimensions=info.dimensions
                ),
                timeout=remaining(context, self._timeout_s),
            )
        except grpc.aio.AioRpcError:
            # Without its vectors the collection is unusable: undo the record.
            await self._d.metadata.DeleteCollection(
                metadata_pb2.DeleteCollectionRequest(name=name), timeout=self._timeout_s
            )
            raise
        return created.collection

    async def GetCollection(
        self, request: collection_pb2.GetCollectionRequest, context: Context
    ) -> collection_pb2.Collection:
        violations = FieldViolations()
        validation.collection_id_of(request.name, "name", violations)
        violations.raise_if_any()
        response = await self._d.metadata.GetCollection(
            metadata_pb2.GetCollectionRequest(name=request.name),
            timeout=remaining(context, self._timeout_s),
        )
        return response.collection

    async def ListCollections(
        self, request: collection_pb2.ListCollectionsRequest, context: Context
    ) -> collection_pb2.ListCollectionsResponse:
        violations = FieldViolations()
        validation.check_page(request.page_size, violations)
        violations.raise_if_any()
        response = await self._d.metadata.ListCollections(
            metadata_pb2.ListCollectionsRequest(
                page_size=request.page_size,
                page_token=request.page_token,
                **principal.listing_scope(),
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return collection_pb2.ListCollectionsResponse(
            collections=response.collections, next_page_token=response.next_page_token
        )

    async def DeleteCollection(
        self, request: collection_pb2.DeleteCollectionRequest, context: Context
    ) -> empty_pb2.Empty:
        violations = FieldViolations()
        collection_id = validation.collection_id_of(request.name, "name", violations)
        violations.raise_if_any()
        # NOT_FOUND for an unknown collection comes from metadata unchanged.
        await self._d.metadata.GetCollection(
            metadata_pb2.GetCollectionRequest(name=request.name),
            timeout=remaining(context, self._timeout_s),
        )
        await self._d.indexer.DeleteVectorCollection(
            indexer_pb2.DeleteVectorCollectionRequest(collection_id=collection_id),
            timeout=remaining(context, self._timeout_s),
        )
        await self._d.metadata.DeleteCollection(
            metadata_pb2.DeleteCollectionRequest(name=request.name),
            timeout=remaining(context, self._timeout_s),
        )
        return empty_pb2.Empty()
