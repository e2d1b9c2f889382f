"""SearchService (proto/semantik/v1/search.proto).

A search: embed the query (embedder; not for sparse mode), query each
collection's vectors in the engine with the mode, fusion and filter
(indexer, concurrently), merge collections by normalised score, optionally
rerank the best candidates (embedder), then read chunk text and documents
(metadata) for the page. Each hop gets what is left of the caller's deadline;
the response says how long each took.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence

import grpc

from semantik.internal.v1 import embedder_pb2, indexer_pb2, metadata_pb2
from semantik.v1 import search_pb2, search_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations, not_found
from servicekit.grpc_types import ServicerContext
from services.gateway.downstream import Downstreams
from services.gateway.search import highlights
from services.gateway.search.merging import Candidate, merge
from services.gateway.search.request import SearchPlan, next_page_token, plan
from services.gateway.security.policy import COLLECTION, SEARCH_COLLECTIONS

Context = ServicerContext
Hydrated = metadata_pb2.HydratedChunk


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


class SearchHandler(search_pb2_grpc.SearchServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

    async def Search(
        self, request: search_pb2.SearchRequest, context: Context
    ) -> search_pb2.SearchResponse:
        started = time.perf_counter()
        violations = FieldViolations()
        named = SEARCH_COLLECTIONS.named(request, violations)
        violations.raise_if_any()
        search = plan(request, [collection_id for _, collection_id in named])
        timing = search_pb2.SearchTiming()

        vector: Sequence[float] = ()
        if search.uses_vector:
            step = time.perf_counter()
            embedded = await self._d.embedder.Embed(
                embedder_pb2.EmbedRequest(
                    texts=[request.query], kind=embedder_pb2.INPUT_KIND_QUERY
                ),
                timeout=remaining(context, self._timeout_s),
            )
            vector = embedded.embeddings[0].values
            timing.embed_ms = _ms(step)

        step = time.perf_counter()
        # One collection without reranking pages inside the engine; otherwise
        # every collection gives its best candidates and the page is cut here.
        in_engine = not search.several and not search.rerank_top_n
        lists = await asyncio.gather(
            *(
                self._query(
                    request,
                    search,
                    collection_id,
                    vector=vector,
                    in_engine=in_engine,
                    context=context,
                )
                for collection_id in search.collection_ids
            )
        )
        timing.vector_query_ms = _ms(step)
        ranked = lists[0] if not search.several else merge(lists)

        texts: dict[str, Hydrated] = {}
        if search.rerank_top_n:
            pool = ranked[: search.rerank_top_n]
            step = time.perf_counter()
            texts = await self._hydrate(pool, context)
            timing.hydrate_ms = _ms(step)
            step = time.perf_counter()
            ranked = await self._rerank(request.query, pool, texts, context)
            timing.rerank_ms = _ms(step)
        if not in_engine:
            if request.score_threshold:
                ranked = [hit for hit in ranked if hit.score >= request.score_threshold]
            ranked = ranked[search.offset : search.offset + search.top_k + 1]
        page, more = ranked[: search.top_k], len(ranked) > search.top_k

        if not texts:
            step = time.perf_counter()
            texts = await self._hydrate(page, context)
            timing.hydrate_ms = _ms(step)
        terms = highlights.query_terms(request.query)
        results = [
            self._result(hit, texts[hit.chunk_id], terms) for hit in page if hit.chunk_id in texts
        ]
        timing.total_ms = _ms(started)
        return search_pb2.SearchResponse(
            results=results,
            next_page_token=next_page_token(search) if more else "",
            timing=timing,
        )

    async def _query(
        self,
        request: search_pb2.SearchRequest,
        search: SearchPlan,
        collection_id: str,
        *,
        vector: Sequence[float],
        in_engine: bool,
        context: Context,
    ) -> list[Candidate]:
        query = indexer_pb2.QueryVectorsRequest(
            collection_id=collection_id,
            vector=vector,
            query_text=request.query,
            mode=search.mode,
            fusion=search.fusion,
            query_expansion=search.expansion,
            filter=request.filter,
            limit=search.top_k + 1 if in_engine else search.candidates,
            offset=search.offset if in_engine else 0,
            score_threshold=request.score_threshold if in_engine else 0.0,
        )
        try:
            response = await self._d.indexer.QueryVectors(
                query, timeout=remaining(context, self._timeout_s)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise not_found(COLLECTION, f"collections/{collection_id}") from exc
            raise
        return [Candidate(collection_id, hit.chunk_id, hit.score) for hit in response.hits]

    async def _hydrate(self, hits: Sequence[Candidate], context: Context) -> dict[str, Hydrated]:
        """Chunk text and document of each hit, one metadata call per collection."""
        by_collection: dict[str, list[str]] = defaultdict(list)
        for hit in hits:
            by_collection[hit.collection_id].append(hit.chunk_id)
        responses = await asyncio.gather(
            *(
                self._d.metadata.HydrateChunks(
                    metadata_pb2.HydrateChunksRequest(collection_id=cid, chunk_ids=ids),
                    timeout=remaining(context, self._timeout_s),
                )
                for cid, ids in by_collection.items()
            )
        )
        # A vector whose chunk is gone (a document replaced mid-search) is skipped.
        return {found.chunk.chunk_id: found for r in responses for found in r.chunks}

    async def _rerank(
        self,
        query: str,
        pool: Sequence[Candidate],
        texts: dict[str, Hydrated],
        context: Context,
    ) -> list[Candidate]:
        kept = [hit for hit in pool if hit.chunk_id in texts]
        if not kept:
            return []
        scored = await self._d.embedder.Rerank(
            embedder_pb2.RerankRequest(
                query=query, documents=[texts[hit.chunk_id].chunk.text for hit in kept]
            ),
            timeout=remaining(context, self._timeout_s),
        )
        rescored = [
            Candidate(hit.collection_id, hit.chunk_id, score)
            for hit, score in zip(kept, scored.scores, strict=True)
        ]
        return sorted(rescored, key=lambda hit: -hit.score)

    @staticmethod
    def _result(hit: Candidate, found: Hydrated, terms: frozenset[str]) -> search_pb2.SearchResult:
        spans = highlights.find(found.chunk.text, terms)
        return search_pb2.SearchResult(
            document=found.document,
            source_path=found.source_path,
            text=found.chunk.text,
            start_offset=found.chunk.start_offset,
            end_offset=found.chunk.end_offset,
            chunk_index=found.chunk.chunk_index,
            score=hit.score,
            collection=f"collections/{hit.collection_id}",
            snippet=highlights.snippet(found.chunk.text, spans),
            highlights=[search_pb2.Highlight(start=start, end=end) for start, end in spans],
            page=found.chunk.page,
            heading=found.chunk.heading,
        )
