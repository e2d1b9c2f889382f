"""Dense, sparse and hybrid search with filters and pagination, on both stores.

The qdrant-client store runs against qdrant-client's local mode.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import qdrant_edge
from qdrant_client import AsyncQdrantClient, models

from services.indexer import sparse
from services.indexer.edge_store import EdgeVectorStore
from services.indexer.qdrant_client_store import QdrantClientVectorStore
from services.indexer.vector_store import (
    VECTOR_NAME,
    FusionMethod,
    PayloadFilter,
    SearchMode,
    SparseUnavailableError,
    VectorPoint,
    VectorQuery,
    VectorStore,
)
from tests.indexer.conftest import DIMS, embed

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")

MODE_PAIRS = [
    (SearchMode.DENSE, FusionMethod.DBSF),
    (SearchMode.SPARSE, FusionMethod.DBSF),
    (SearchMode.HYBRID, FusionMethod.DBSF),
    (SearchMode.HYBRID, FusionMethod.RRF),
]
MODES = [
    pytest.param(SearchMode.DENSE, FusionMethod.DBSF, id="dense"),
    pytest.param(SearchMode.SPARSE, FusionMethod.DBSF, id="sparse"),
    pytest.param(SearchMode.HYBRID, FusionMethod.DBSF, id="hybrid-dbsf"),
    pytest.param(SearchMode.HYBRID, FusionMethod.RRF, id="hybrid-rrf"),
]


@pytest.fixture(params=["edge", "qdrant-client"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    opened: EdgeVectorStore | QdrantClientVectorStore
    if request.param == "edge":
        opened = EdgeVectorStore(tmp_path / "vectors")
    else:
        opened = QdrantClientVectorStore(AsyncQdrantClient(location=":memory:"))
    await opened.open()
    yield opened
    await opened.close()


@dataclass(frozen=True)
class Doc:
    index: int
    chunk_id: str
    text: str
    payload: dict[str, Any]


def make_docs(count: int = 200) -> list[Doc]:
    """Every text holds "report" (so every mode can return any document), and
    attributes vary by index so that filters select known subsets."""
    docs = []
    for i in range(count):
        folder = "red" if i < 30 else "reddish" if i < 40 else "blue"
        payload: dict[str, Any] = {
            "source_path": f"/data/{folder}/{i:03}.txt",
            "mime_type": "text/markdown" if i % 5 == 0 else "text/plain",
            "modified_at": 1000.0 + i,
        }
        if i % 2 == 0:
            payload["page"] = (i // 2) % 10 + 1
        docs.append(
            Doc(i, str(uuid.UUID(int=i + 1)), f"report number {i} on topic{i % 7}", payload)
        )
    return docs


def point(doc: Doc) -> VectorPoint:
    return VectorPoint(doc.chunk_id, embed(doc.text), doc.payload, sparse.document_terms(doc.text))


async def fill(store: VectorStore, docs: list[Doc]) -> None:
    await store.create_collection("c", DIMS)
    for first in range(0, len(docs), 64):
        await store.upsert("c", [point(d) for d in docs[first : first + 64]])
    await store.optimize("c")


def query(mode: SearchMode, fusion: FusionMethod, text: str, **fields: Any) -> VectorQuery:
    return VectorQuery(
        mode=mode,
        fusion=fusion,
        vector=embed(text) if mode is not SearchMode.SPARSE else [],
        terms=sparse.query_terms(text) if mode is not SearchMode.DENSE else [],
        **fields,
    )


@pytest.mark.parametrize(("mode", "fusion"), MODES)
async def test_each_mode_finds_the_best_match_first(
    store: VectorStore, mode: SearchMode, fusion: FusionMethod
) -> None:
    docs = make_docs(50)
    docs.append(Doc(50, str(uuid.uuid4()), "laminar boundary layer separation", {}))
    await fill(store, docs)
    hits = await store.search("c", query(mode, fusion, "laminar boundary layer", limit=5))
    assert hits[0].chunk_id == docs[-1].chunk_id
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("fusion", [FusionMethod.DBSF, FusionMethod.RRF])
async def test_hybrid_finds_by_keywords_and_by_meaning(
    store: VectorStore, fusion: FusionMethod
) -> None:
    await store.create_collection("c", 3)
    keyword_only = str(uuid.uuid4())  # has the rare word, far in meaning
    meaning_only = str(uuid.uuid4())  # no shared word, nearest in meaning
    points = [
        VectorPoint(keyword_only, [0.0, 0.0, 1.0], {}, sparse.document_terms("xylophone repair")),
        VectorPoint(meaning_only, [1.0, 0.0, 0.0], {}, sparse.document_terms("marimba mending")),
    ]
    points += [
        VectorPoint(str(uuid.uuid4()), [0.3, 1.0, 0.0], {}, sparse.document_terms(f"filler {i}"))
        for i in range(30)
    ]
    await store.upsert("c", points)
    await store.optimize("c")
    terms = sparse.query_terms("xylophone")
    dense = await store.search("c", VectorQuery(limit=2, vector=[1.0, 0.0, 0.0]))
    keywords = await store.search("c", VectorQuery(limit=2, mode=SearchMode.SPARSE, terms=terms))
    assert keyword_only not in {h.chunk_id for h in dense}
    assert [h.chunk_id for h in keywords] == [keyword_only]
    hybrid = await store.search(
        "c",
        VectorQuery(
            limit=2, mode=SearchMode.HYBRID, fusion=fusion, vector=[1.0, 0.0, 0.0], terms=terms
        ),
    )
    assert {h.chunk_id for h in hybrid} == {keyword_only, meaning_only}


FILTERS: list[tuple[str, PayloadFilter, Callable[[Doc], bool]]] = [
    ("prefix-folder", PayloadFilter(path_prefix="/data/red/"), lambda d: d.index < 30),
    ("prefix-literal", PayloadFilter(path_prefix="/data/red"), lambda d: d.index < 40),
    (
        "mime-one",
        PayloadFilter(mime_types=("text/markdown",)),
        lambda d: d.index % 5 == 0,
    ),
    (
        "mime-any",
        PayloadFilter(mime_types=("text/markdown", "application/pdf")),
        lambda d: d.index % 5 == 0,
    ),
    ("after-inclusive", PayloadFilter(modified_after=1170.0), lambda d: d.index >= 170),
    ("before-exclusive", PayloadFilter(modified_before=1030.0), lambda d: d.index < 30),
    (
        "time-window",
        PayloadFilter(modified_after=1050.0, modified_before=1080.0),
        lambda d: 50 <= d.index < 80,
    ),
    (
        "pages",
        PayloadFilter(page_from=3, page_to=5),
        lambda d: 3 <= d.payload.get("page", 0) <= 5,
    ),
    ("page-from-open", PayloadFilter(page_from=9), lambda d: d.payload.get("page", 0) >= 9),
    ("page-to-open", PayloadFilter(page_to=1), lambda d: d.payload.get("page", 0) == 1),
    (
        "combined",
        PayloadFilter(
            path_prefix="/data/",
            mime_types=("text/markdown",),
            modified_after=1040.0,
            page_from=1,
        ),
        lambda d: d.index % 5 == 0 and d.index >= 40 and "page" in d.payload,
    ),
    ("nothing", PayloadFilter(path_prefix="/elsewhere/"), lambda d: False),
]


@pytest.mark.parametrize(("mode", "fusion"), MODES)
async def test_filters_apply_before_the_top_k_cut(
    store: VectorStore, mode: SearchMode, fusion: FusionMethod
) -> None:
    docs = make_docs()
    await fill(store, docs)
    for name, conditions, predicate in FILTERS:
        wanted = {d.chunk_id for d in docs if predicate(d)}
        hits = await store.search(
            "c", query(mode, fusion, "report number 7", limit=20, filter=conditions)
        )
        found = [h.chunk_id for h in hits]
        assert len(found) == min(20, len(wanted)), name
        assert set(found) <= wanted, name
        assert len(set(found)) == len(found), name


async def test_a_filter_matching_30_of_200_fills_the_page(store: VectorStore) -> None:
    docs = make_docs()
    await fill(store, docs)
    conditions = PayloadFilter(path_prefix="/data/red/")
    for mode, fusion in MODE_PAIRS:
        hits = await store.search(
            "c", query(mode, fusion, "report topic3", limit=20, filter=conditions)
        )
        assert len(hits) == 20
        assert all(uuid.UUID(h.chunk_id).int - 1 < 30 for h in hits)


def distinct_docs(count: int) -> list[VectorPoint]:
    """Points whose scores do not tie: random directions, and texts that differ
    in how often "report" occurs and in length (engines order ties arbitrarily)."""
    rng = random.Random(11)
    points = []
    for i in range(count):
        text = " ".join(["report"] * (1 + i % 10) + [f"w{i}x{j}" for j in range(i // 10)])
        vector = [rng.gauss(0, 1) for _ in range(DIMS)]
        points.append(
            VectorPoint(str(uuid.UUID(int=i + 1)), vector, {}, sparse.document_terms(text))
        )
    return points


@pytest.mark.parametrize(("mode", "fusion"), MODES)
async def test_offset_pages_are_disjoint_and_consecutive(
    store: VectorStore, mode: SearchMode, fusion: FusionMethod
) -> None:
    await store.create_collection("c", DIMS)
    await store.upsert("c", distinct_docs(120))
    await store.optimize("c")
    text = "report number"
    whole = await store.search("c", query(mode, fusion, text, limit=30, prefetch_limit=120))
    pages = [
        await store.search(
            "c", query(mode, fusion, text, limit=10, offset=offset, prefetch_limit=120)
        )
        for offset in (0, 10, 20)
    ]
    ids = [h.chunk_id for page in pages for h in page]
    assert len(ids) == 30 == len(set(ids))
    assert ids == [h.chunk_id for h in whole]


@pytest.mark.parametrize(("mode", "fusion"), MODES)
async def test_score_threshold_drops_weaker_hits(
    store: VectorStore, mode: SearchMode, fusion: FusionMethod
) -> None:
    await fill(store, make_docs(60))
    text = "report number 3 topic3"
    hits = await store.search("c", query(mode, fusion, text, limit=40))
    cut = hits[5].score
    kept = await store.search("c", query(mode, fusion, text, limit=40, score_threshold=cut))
    assert kept and all(h.score >= cut for h in kept)
    assert len(kept) < len(hits)


async def test_stop_words_only_find_nothing_by_keywords(store: VectorStore) -> None:
    await fill(store, make_docs(10))
    assert (
        await store.search("c", query(SearchMode.SPARSE, FusionMethod.DBSF, "the of", limit=5))
        == []
    )
    # Hybrid falls back to its dense side.
    hits = await store.search("c", query(SearchMode.HYBRID, FusionMethod.RRF, "the of", limit=5))
    assert len(hits) == 5


async def test_collections_without_sparse_vectors_search_dense_only(tmp_path: Path) -> None:
    # A collection as this service made it before sparse vectors existed.
    old_point = str(uuid.uuid4())
    shard = qdrant_edge.EdgeShard.create(
        str(tmp_path / "v" / "old"),
        qdrant_edge.EdgeConfig(
            vectors={
                VECTOR_NAME: qdrant_edge.EdgeVectorParams(
                    size=2, distance=qdrant_edge.Distance.Cosine
                )
            }
        ),
    )
    shard.update(
        qdrant_edge.UpdateOperation.upsert_points(
            [qdrant_edge.Point(old_point, {VECTOR_NAME: [1.0, 0.0]}, {"source_path": "/a"})]
        )
    )
    shard.flush()
    shard.close()

    edge = EdgeVectorStore(tmp_path / "v")
    await edge.open()
    client = QdrantClientVectorStore(AsyncQdrantClient(location=":memory:"))
    await client._client.create_collection(
        "old",
        vectors_config={VECTOR_NAME: models.VectorParams(size=2, distance=models.Distance.COSINE)},
    )
    try:
        assert len(await edge.search("old", VectorQuery(limit=5, vector=[1.0, 0.0]))) == 1
        for store in (edge, client):
            # Writes go on (dense only), dense search works, sparse and hybrid refuse.
            new_point = str(uuid.uuid4())
            await store.upsert("old", [VectorPoint(new_point, [0.0, 1.0], {}, {1: 1})])
            await store.optimize("old")
            dense = await store.search("old", VectorQuery(limit=5, vector=[1.0, 0.0]))
            assert new_point in {h.chunk_id for h in dense}
            for mode in (SearchMode.SPARSE, SearchMode.HYBRID):
                with pytest.raises(SparseUnavailableError, match="reindex"):
                    await store.search(
                        "old", VectorQuery(limit=5, mode=mode, vector=[1.0, 0.0], terms=[1])
                    )
    finally:
        await edge.close()
        await client.close()


async def test_rm3_expansion_finds_chunks_by_the_feedback_terms(store: VectorStore) -> None:
    """`alpha` matches two chunks that both say `beta` a lot; RM3 adds `beta` to
    the query, so the chunk with `beta` and no `alpha` is found too."""
    await store.create_collection("c", DIMS)
    texts = {
        "both-1": "alpha beta beta beta",
        "both-2": "alpha beta beta",
        "beta-only": "beta beta gamma",
        "unrelated": "delta epsilon",
    }
    ids = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in texts}
    await store.upsert(
        "c",
        [
            VectorPoint(ids[name], embed(text), {}, sparse.document_terms(text))
            for name, text in texts.items()
        ],
    )
    await store.optimize("c")
    plain = await store.search("c", query(SearchMode.SPARSE, FusionMethod.DBSF, "alpha", limit=10))
    assert {hit.chunk_id for hit in plain} == {ids["both-1"], ids["both-2"]}
    expanded = await store.search(
        "c", query(SearchMode.SPARSE, FusionMethod.DBSF, "alpha", limit=10, expand=True)
    )
    found = [hit.chunk_id for hit in expanded]
    assert set(found) == {ids["both-1"], ids["both-2"], ids["beta-only"]}
    assert found[-1] == ids["beta-only"]  # it matches the expansion, not the query
    # Hybrid: the same expansion, every page the same (the first round ignores the page).
    hybrid = query(SearchMode.HYBRID, FusionMethod.DBSF, "alpha", limit=2, expand=True)
    first_page = await store.search("c", hybrid)
    second_page = await store.search("c", dataclasses.replace(hybrid, offset=2))
    whole = await store.search("c", dataclasses.replace(hybrid, limit=4))
    assert [h.chunk_id for h in first_page + second_page] == [h.chunk_id for h in whole]
