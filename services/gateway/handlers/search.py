"""SearchService (proto/semantik/v1/search.proto).

A search is three sequential hops: embed the query (embedder), nearest
chunks (indexer), chunk text and document (metadata). Each hop gets what is
left of the caller's deadline.
"""

from __future__ import annotations

import grpc

from semantik.internal.v1 import embedder_pb2, indexer_pb2, metadata_pb2
from semantik.v1 import search_pb2, search_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations, not_found
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams

Context = ServicerContext

DEFAULT_TOP_K = 10
MAX_TOP_K = 100
MAX_QUERY_CHARS = 4096


class SearchHandler(search_pb2_grpc.SearchServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

    async def Search(
        self, request: search_pb2.SearchRequest, context: Context
    ) -> search_pb2.SearchResponse:
        violations = FieldViolations()
        collection_id = validation.collection_id_of(request.collection, "collection", violations)
        validation.check_text(
            request.query, "query", violations, max_chars=MAX_QUERY_CHARS, required=True
        )
        if not 0 <= request.top_k <= MAX_TOP_K:
            violations.add("top_k", f"must be 1..{MAX_TOP_K} (0 means {DEFAULT_TOP_K})")
        violations.raise_if_any()
        top_k = request.top_k or DEFAULT_TOP_K

        embedded = await self._d.embedder.Embed(
            embedder_pb2.EmbedRequest(texts=[request.query], kind=embedder_pb2.INPUT_KIND_QUERY),
            timeout=remaining(context, self._timeout_s),
        )
        try:
            hits = (
                await self._d.indexer.QueryVectors(
                    indexer_pb2.QueryVectorsRequest(
                        collection_id=collection_id,
                        vector=embedded.embeddings[0].values,
                        limit=top_k,
                    ),
                    timeout=remaining(context, self._timeout_s),
                )
            ).hits
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise not_found("semantik.io/Collection", request.collection) from exc
            raise
        if not hits:
            return search_pb2.SearchResponse()

        hydrated = await self._d.metadata.HydrateChunks(
            metadata_pb2.HydrateChunksRequest(
                collection_id=collection_id, chunk_ids=[hit.chunk_id for hit in hits]
            ),
            timeout=remaining(context, self._timeout_s),
        )
        by_id = {chunk.chunk.chunk_id: chunk for chunk in hydrated.chunks}
        results = []
        for hit in hits:
            found = by_id.get(hit.chunk_id)
            # A vector whose chunk is gone (a document replaced mid-search) is skipped.
            if found is None:
                continue
            results.append(
                search_pb2.SearchResult(
                    document=found.document,
                    source_path=found.source_path,
                    text=found.chunk.text,
                    start_offset=found.chunk.start_offset,
                    end_offset=found.chunk.end_offset,
                    chunk_index=found.chunk.chunk_index,
                    score=hit.score,
                )
            )
        return search_pb2.SearchResponse(results=results)
