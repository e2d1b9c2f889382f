"""The gateway's search helpers without a mesh: merging, page tokens, snippets."""

from __future__ import annotations

import grpc
import pytest

from semantik.v1 import search_pb2
from servicekit.errors import ServiceError
from services.gateway.search import highlights
from services.gateway.search.merging import Candidate, merge, normalised
from services.gateway.search.request import next_page_token, plan


def test_each_collection_is_normalised_before_merging() -> None:
    bm25_scale = [Candidate("a", "a1", 14.0), Candidate("a", "a2", 7.0), Candidate("a", "a3", 0.0)]
    cosine_scale = [Candidate("b", "b1", 0.61), Candidate("b", "b2", 0.60)]
    merged = merge([bm25_scale, cosine_scale])
    assert [(c.chunk_id, c.score) for c in merged] == [
        ("a1", 1.0), ("b1", 1.0), ("a2", 0.5), ("a3", 0.0), ("b2", 0.0)
    ]  # fmt: skip
    assert normalised([Candidate("a", "x", 3.0)])[0].score == 1.0
    assert normalised([]) == []


def test_page_tokens_continue_only_their_search() -> None:
    request = search_pb2.SearchRequest(collection="collections/c", query="wings", top_k=5)
    first = plan(request, ["c"])
    assert (first.offset, first.top_k) == (0, 5)
    request.page_token = next_page_token(first)
    second = plan(request, ["c"])
    assert second.offset == 5
    other = search_pb2.SearchRequest(
        collection="collections/c", query="tails", top_k=5, page_token=request.page_token
    )
    with pytest.raises(ServiceError) as error:
        plan(other, ["c"])
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_defaults_are_hybrid_with_dbsf() -> None:
    search = plan(search_pb2.SearchRequest(collection="collections/c", query="q"), ["c"])
    assert search.mode == search_pb2.SEARCH_MODE_HYBRID
    assert search.fusion == search_pb2.FUSION_DBSF
    assert search.top_k == 10
    assert search.expansion == search_pb2.QUERY_EXPANSION_RM3


@pytest.mark.parametrize(
    ("mode", "fusion", "expected"),
    [
        (search_pb2.SEARCH_MODE_HYBRID, search_pb2.FUSION_DBSF, search_pb2.QUERY_EXPANSION_RM3),
        (search_pb2.SEARCH_MODE_HYBRID, search_pb2.FUSION_RRF, search_pb2.QUERY_EXPANSION_NONE),
        (search_pb2.SEARCH_MODE_SPARSE, 0, search_pb2.QUERY_EXPANSION_NONE),
        (search_pb2.SEARCH_MODE_DENSE, 0, search_pb2.QUERY_EXPANSION_NONE),
    ],
)
def test_rm3_is_the_default_only_for_hybrid_dbsf(
    mode: search_pb2.SearchMode, fusion: search_pb2.Fusion, expected: search_pb2.QueryExpansion
) -> None:
    request = search_pb2.SearchRequest(collection="collections/c", query="q", mode=mode)
    request.fusion = fusion
    assert plan(request, ["c"]).expansion == expected


def test_rm3_cannot_expand_a_dense_search() -> None:
    request = search_pb2.SearchRequest(
        collection="collections/c",
        query="q",
        mode=search_pb2.SEARCH_MODE_DENSE,
        query_expansion=search_pb2.QUERY_EXPANSION_RM3,
    )
    with pytest.raises(ServiceError) as error:
        plan(request, ["c"])
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "query_expansion" in str(error.value.details)


def test_snippet_centres_on_the_matches() -> None:
    text = (
        ("filler words " * 40)
        + "the shock wave stands off the body; shocks again "
        + ("more filler " * 40)
    )
    terms = highlights.query_terms("shock")
    spans = highlights.find(text, terms)
    assert [text[a:b] for a, b in spans] == ["shock", "shocks"]
    snippet = highlights.snippet(text, spans)
    assert "shock wave" in snippet
    assert len(snippet) <= highlights.SNIPPET_CHARS + 8
    assert snippet.startswith("... ") and snippet.endswith(" ...")
