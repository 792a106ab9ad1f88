"""Request bodies (pure): the version filter is always inside the k-NN clause, whatever the caller passes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_support import V1, embedding_type, location, trees

from contract.filters import parse_filter
from contract.indexing import Slot
from contract.types import Similarity
from search.filters import to_query
from search.requests import (
    FallbackQuery,
    ItemDocument,
    PopularQuery,
    SlotVector,
    VersionedKnnQuery,
    WeightedTerm,
    bulk_body,
    delete_action,
    exact_body,
    fallback_body,
    index_action,
    knn_body,
    popular_body,
    update_action,
)

ETYPE = embedding_type(3)
LOC = location("p-items-x", ETYPE, V1)
VERSION_TERM = {"term": {LOC.version_field: V1}}


@settings(max_examples=150, deadline=None)
@given(
    raw=st.none() | trees,
    exclude=st.frozensets(st.text(min_size=1, max_size=8), max_size=5),
    k=st.integers(1, 100),
)
def test_every_knn_body_filters_on_its_version_inside_the_clause(
    raw: Any, exclude: frozenset[str], k: int
) -> None:
    tree = parse_filter(raw) if raw is not None else None
    query = VersionedKnnQuery(LOC, Similarity.DOT, [0.1, 0.2, 0.3], k=k, filter=tree, exclude_ids=exclude)
    body = knn_body(query)
    assert set(body) == {"size", "_source", "query"}  # no post_filter, nothing around the knn clause
    ((field, clause),) = body["query"]["knn"].items()
    assert field == LOC.vector_field
    inner = clause["filter"]["bool"]
    assert inner["filter"][0] == VERSION_TERM
    assert inner["filter"][1:] == ([to_query(tree)] if tree is not None else [])
    assert inner.get("must_not", []) == ([{"terms": {"item_id": sorted(exclude)}}] if exclude else [])
    assert body["size"] == k and clause["k"] == k
    assert LOC.version_field in body["_source"] and "item_id" in body["_source"]

    exact = exact_body(query)["query"]["script_score"]
    assert exact["query"] == clause["filter"]
    assert exact["script"]["lang"] == "knn" and exact["script"]["source"] == "knn_score"
    assert exact["script"]["params"]["space_type"] == "innerproduct"


def test_a_knn_query_cannot_be_built_without_a_location() -> None:
    with pytest.raises(TypeError):
        VersionedKnnQuery(similarity=Similarity.DOT, vector=[1.0], k=1)  # type: ignore[call-arg]


def test_candidates_and_ef_search_go_into_the_clause() -> None:
    clause = knn_body(VersionedKnnQuery(LOC, Similarity.DOT, [1, 2, 3], k=5, candidates=50, ef_search=300))[
        "query"
    ]["knn"][LOC.vector_field]
    assert clause["k"] == 50
    assert clause["method_parameters"] == {"ef_search": 300}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"k": 0}, "k must be within"),
        ({"k": 10_001}, "k must be within"),
        ({"vector": []}, "must not be empty"),
        ({"vector": [1.0, float("nan"), 0.0]}, "finite"),
        ({"candidates": 3, "k": 5}, "must be >= k"),
        ({"source_fields": ("colour",)}, "unknown source fields"),
        ({"exclude_ids": frozenset(str(i) for i in range(10_001))}, "more than the limit"),
        ({"ef_search": 0}, "ef_search"),
    ],
)
def test_bad_queries_are_refused(kwargs: dict[str, Any], needle: str) -> None:
    args: dict[str, Any] = {
        "location": LOC,
        "similarity": Similarity.DOT,
        "vector": [1.0, 2.0, 3.0],
        "k": 5,
        **kwargs,
    }
    with pytest.raises(ValueError, match=needle):
        VersionedKnnQuery(**args)


def test_fallback_selects_items_without_the_version_and_documents_its_score() -> None:
    tree = parse_filter({"op": "exists", "field": "tags"})
    body = fallback_body(
        FallbackQuery(
            LOC, k=7, terms=(WeightedTerm("tags", "fantasy", 2.0),), filter=tree, exclude_ids=frozenset({"x"})
        )
    )
    scored = body["query"]["function_score"]
    assert scored["query"]["bool"]["must_not"] == [VERSION_TERM, {"terms": {"item_id": ["x"]}}]
    assert scored["query"]["bool"]["filter"] == [to_query(tree)]
    assert {"filter": {"term": {"tags": "fantasy"}}, "weight": 2.0} in scored["functions"]
    assert scored["score_mode"] == "sum" and scored["boost_mode"] == "replace"
    assert body["size"] == 7
    with pytest.raises(ValueError, match="must be one of"):
        WeightedTerm("year", "1990", 1.0)
    with pytest.raises(ValueError, match="finite and > 0"):
        WeightedTerm("tags", "x", float("inf"))


def test_popular_needs_no_version() -> None:
    body = popular_body(PopularQuery("p-items-x", k=3))
    assert "term" not in str(body)
    assert body["sort"][0] == {"_score": "desc"}


def test_bulk_lines_and_documents() -> None:
    doc = ItemDocument(
        "42", {"title": "T", "year": 1999}, (SlotVector.of(ETYPE.name, Slot.B, V1, [1, 2, 3]),)
    )
    assert doc.source() == {
        "title": "T",
        "year": 1999,
        "item_id": "42",
        "emb_als_d4_b": [1.0, 2.0, 3.0],
        "emb_als_d4_b_version": V1,
    }
    lines = bulk_body([index_action("i", doc), update_action("i", doc), delete_action("i", "7")])
    assert lines[0] == {"index": {"_index": "i", "_id": "42"}}
    assert lines[3] == {"doc": doc.source(), "doc_as_upsert": True}
    assert lines[4] == {"delete": {"_index": "i", "_id": "7"}}
    assert len(lines) == 5
    with pytest.raises(ValueError, match="unknown metadata fields"):
        ItemDocument("1", {"colour": "red"})
    with pytest.raises(ValueError, match="differs"):
        ItemDocument("1", {"item_id": "2"})
