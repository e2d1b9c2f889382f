"""Search modes, several collections, filters inside the engine, pages, highlights, timing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from semantik.internal.v1 import embedder_pb2, embedder_pb2_grpc
from semantik.v1 import collection_pb2, document_pb2, operation_pb2, search_pb2
from semantik_runner.mesh import Mesh
from servicekit import service_auth
from tests.e2e.conftest import Api

# 40 short notes on one subject in two folders and two formats, plus two that
# only a keyword search can tell apart from the rest.
TOPICS = [
    "The boundary layer thickens downstream along a flat plate in laminar flow.",
    "Shock waves form ahead of a blunt body in supersonic flight.",
    "Heat transfer at the stagnation point rises with the free stream velocity.",
    "Wing flutter couples bending and torsion modes of the structure.",
]


def _write_corpus(root: Path) -> None:
    for i in range(40):
        folder = "reports" if i % 2 else "notes"
        suffix = ".md" if i % 4 < 2 else ".txt"
        # Lengths differ (5i extra words), so no two BM25 scores tie: engines
        # order equal scores arbitrarily, and a tie across a page boundary
        # could repeat or skip a result between pages.
        padding = " measured" * (5 * i)
        text = (
            f"Note {i}. {TOPICS[i % len(TOPICS)]} Observation number {i} of the series{padding}.\n"
        )
        path = root / folder / f"note-{i:02d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "codes" / "xq7.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "codes" / "xq7.txt").write_text(
        "Part number XQ7-ALPHA is the replacement valve for the fuel pump.\n", encoding="utf-8"
    )


def _index(api: Api, collection_id: str, folder: Path) -> None:
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id=collection_id, collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    operation = api.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent=f"collections/{collection_id}", source_path=str(folder)
        ),
        timeout=30,
    )
    assert api.wait_done(operation.name).state == operation_pb2.OPERATION_STATE_SUCCEEDED


@pytest.fixture(scope="module")
def indexed(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("search-corpus")
    _write_corpus(root)
    _index(api, "srch-main", root)
    other = tmp_path_factory.mktemp("search-other")
    (other / "orbit.txt").write_text(
        "A satellite in low Earth orbit circles the planet every ninety minutes.\n",
        encoding="utf-8",
    )
    (other / "valve.txt").write_text(
        "The fuel pump valve was replaced after the leak test.\n", encoding="utf-8"
    )
    _index(api, "srch-other", other)
    yield root


def _search(api: Api, **fields: Any) -> search_pb2.SearchResponse:
    fields.setdefault("collection", "collections/srch-main")
    response: search_pb2.SearchResponse = api.search.Search(
        search_pb2.SearchRequest(**fields), timeout=60
    )
    return response


@pytest.mark.parametrize(
    "mode",
    [search_pb2.SEARCH_MODE_DENSE, search_pb2.SEARCH_MODE_SPARSE, search_pb2.SEARCH_MODE_HYBRID],
)
def test_each_mode_finds_the_keyword_document(api: Api, indexed: Path, mode: Any) -> None:
    response = _search(api, query="XQ7-ALPHA replacement valve", mode=mode, top_k=3)
    assert response.results[0].source_path.endswith("codes/xq7.txt")
    assert response.results[0].collection == "collections/srch-main"


def test_sparse_mode_scores_keywords_not_meaning(api: Api, indexed: Path) -> None:
    # A word no document has: BM25 finds nothing, while dense always answers.
    sparse = _search(api, query="zeppelin", mode=search_pb2.SEARCH_MODE_SPARSE)
    dense = _search(api, query="zeppelin", mode=search_pb2.SEARCH_MODE_DENSE)
    assert list(sparse.results) == []
    assert len(dense.results) == 10


def test_timing_is_reported(api: Api, indexed: Path) -> None:
    timing = _search(api, query="shock waves", mode=search_pb2.SEARCH_MODE_HYBRID).timing
    assert timing.embed_ms > 0
    assert timing.vector_query_ms > 0
    assert timing.hydrate_ms > 0
    assert timing.rerank_ms == 0
    assert timing.total_ms >= timing.embed_ms + timing.vector_query_ms + timing.hydrate_ms
    sparse = _search(api, query="shock waves", mode=search_pb2.SEARCH_MODE_SPARSE).timing
    assert sparse.embed_ms == 0


def test_highlights_and_snippet_mark_the_query_terms(api: Api, indexed: Path) -> None:
    result = _search(api, query="shocks", mode=search_pb2.SEARCH_MODE_SPARSE).results[0]
    marked = [result.text[h.start : h.end] for h in result.highlights]
    assert marked and all(word.lower() == "shock" for word in marked)
    assert "Shock" in result.snippet


@pytest.mark.parametrize(
    "mode",
    [search_pb2.SEARCH_MODE_DENSE, search_pb2.SEARCH_MODE_SPARSE, search_pb2.SEARCH_MODE_HYBRID],
)
def test_a_filter_applies_before_the_top_k_cut(api: Api, indexed: Path, mode: Any) -> None:
    # 10 of the 41 documents are .md notes under reports/ (odd i with i % 4 < 2).
    search_filter = search_pb2.SearchFilter(
        path_prefix=str(indexed / "reports") + "/", mime_types=["text/markdown"]
    )
    response = _search(api, query="flow observation", mode=mode, top_k=10, filter=search_filter)
    paths = [r.source_path for r in response.results]
    assert len(paths) == 10
    assert all("/reports/" in p and p.endswith(".md") for p in paths)


def test_modified_time_filter(api: Api, indexed: Path) -> None:
    future = timestamp_pb2.Timestamp(seconds=4_000_000_000)
    none = _search(
        api, query="flow", mode=search_pb2.SEARCH_MODE_SPARSE,
        filter=search_pb2.SearchFilter(modified_after=future),
    )  # fmt: skip
    assert list(none.results) == []
    every = _search(
        api, query="flow", mode=search_pb2.SEARCH_MODE_SPARSE,
        filter=search_pb2.SearchFilter(modified_before=future),
    )  # fmt: skip
    assert len(every.results) == 10


def test_pages_are_disjoint_and_end(api: Api, indexed: Path) -> None:
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = _search(
            api, query="observation of the series", mode=search_pb2.SEARCH_MODE_SPARSE,
            top_k=15, page_token=token,
        )  # fmt: skip
        seen += [r.document for r in page.results]
        token = page.next_page_token
        if not token:
            break
    assert token == ""
    assert len(seen) == len(set(seen)) == 40  # every note, once; not the XQ7 sheet
    with pytest.raises(grpc.RpcError) as error:
        _search(api, query="another query", page_token=token or "bm90IGEgdG9rZW4")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_several_collections_merge_normalised_scores(api: Api, indexed: Path) -> None:
    response = _search(
        api,
        collection="",
        collections=["collections/srch-main", "collections/srch-other"],
        query="fuel pump valve",
        mode=search_pb2.SEARCH_MODE_HYBRID,
        top_k=5,
    )
    collections = {r.collection for r in response.results}
    assert collections == {"collections/srch-main", "collections/srch-other"}
    assert all(0.0 <= r.score <= 1.0 for r in response.results)
    scores = [r.score for r in response.results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 1.0


def test_score_threshold_drops_weak_results(api: Api, indexed: Path) -> None:
    everything = _search(api, query="fuel pump valve", mode=search_pb2.SEARCH_MODE_DENSE)
    cut = (everything.results[0].score + everything.results[-1].score) / 2
    kept = _search(
        api, query="fuel pump valve", mode=search_pb2.SEARCH_MODE_DENSE, score_threshold=cut
    )
    assert 0 < len(kept.results) < len(everything.results)
    assert all(r.score >= cut for r in kept.results)


def test_rerank_orders_by_the_rerankers_scores(api: Api, indexed: Path, mesh: Mesh) -> None:
    query = "fuel pump valve replacement"
    candidates = _search(api, query=query, top_k=20)
    reranked = _search(
        api, query=query, top_k=5, rerank=search_pb2.RerankOptions(enabled=True, top_n=20)
    )
    assert reranked.timing.rerank_ms > 0
    assert len(reranked.results) == 5
    scores = [r.score for r in reranked.results]
    assert scores == sorted(scores, reverse=True)
    # The five come from the 20 candidates, and their scores are the reranker's own.
    assert {r.text for r in reranked.results} <= {r.text for r in candidates.results}
    with grpc.insecure_channel(mesh.embedder.address) as channel:
        direct = embedder_pb2_grpc.EmbedderServiceStub(channel).Rerank(
            embedder_pb2.RerankRequest(query=query, documents=[r.text for r in candidates.results]),
            metadata=[(service_auth.METADATA_KEY, mesh.service_token)],
            timeout=60,
        )
    best = sorted(direct.scores, reverse=True)[:5]
    assert scores == pytest.approx(best, abs=1e-4)
