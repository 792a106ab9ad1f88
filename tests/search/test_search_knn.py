"""Versioned, filtered k-NN, exact scoring, fallback and popularity lists: the port on the real OpenSearch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch
from search_support import V1, V2, IndexFactory, embedding_type, location

from contract.filters import matches, parse_filter
from contract.indexing import IndexedLocation, Slot
from contract.types import EmbeddingType, Similarity
from search.errors import VersionMismatch
from search.port import SearchEngine
from search.requests import (
    FallbackQuery,
    ItemDocument,
    PopularQuery,
    Prior,
    SlotVector,
    VersionedKnnQuery,
    WeightedTerm,
    count_body,
    index_action,
    knn_body,
)
from search.results import ScoredItem, parse_vector_hits

DIM = 4
N = 200
QUERY = [1.0, 0.5, 0.0, 0.25]


@dataclass
class Corpus:
    """A small items index: vectors of V1 in slot A for most items, V2 in the same field for some."""

    index: str
    etype: EmbeddingType
    v1: IndexedLocation
    v2: IndexedLocation
    metadata: dict[str, dict[str, Any]]
    vectors: dict[str, np.ndarray]
    versions: dict[str, str | None]


@pytest.fixture
async def corpus(search: SearchEngine, items_index: IndexFactory) -> Corpus:
    rng = np.random.default_rng(7)
    etype = embedding_type(DIM, Similarity.DOT)
    index = await items_index("knn", [etype])
    query = np.array(QUERY)
    metadata: dict[str, dict[str, Any]] = {}
    vectors: dict[str, np.ndarray] = {}
    versions: dict[str, str | None] = {}
    docs = []
    for i in range(N):
        item_id = f"b{i:03d}"
        vec = rng.normal(size=DIM)
        rare = i % 10 == 0  # 20 "rare" items, all pointing away from the query
        if rare:
            vec = -np.abs(vec) * np.sign(query + 1e-9)
        version: str | None = V1
        if i % 7 == 3:
            version = V2
            vec = query * 3 + rng.normal(scale=0.01, size=DIM)  # the best matches, but of another version
        elif i % 13 == 5:
            version = None  # cold item: no vector at all
        meta = {
            "title": f"Book {i}",
            "language": "rare" if rare else ("eng" if i % 2 else "fre"),
            "year": 1950 + i % 60,
            "tags": ["fantasy"] if i % 3 == 0 else ["classics", "romance"],
            "authors": [f"author{i % 5}"],
            "ratings_count": (i * 37) % 1000,
            "average_rating": round(3 + (i % 20) / 10, 2),
        }
        metadata[item_id] = meta
        versions[item_id] = version
        slots: tuple[SlotVector, ...] = ()
        if version is not None:
            vectors[item_id] = vec
            slots = (SlotVector.of(etype.name, Slot.A, version, vec.tolist()),)
        docs.append(index_action(index, ItemDocument(item_id, meta, slots)))
    report = await search.bulk_write(docs, refresh=True)
    assert report.ok, report.failed
    assert len(report.succeeded) == N
    return Corpus(
        index, etype, location(index, etype, V1), location(index, etype, V2), metadata, vectors, versions
    )


def expected_top(
    corpus: Corpus, version: str, k: int, tree: Any = None, exclude: frozenset[str] = frozenset()
) -> list[str]:
    query = np.array(QUERY)
    scored = [
        (float(corpus.vectors[i] @ query), i)
        for i, v in corpus.versions.items()
        if v == version and i not in exclude and (tree is None or matches(tree, corpus.metadata[i]))
    ]
    return [i for _, i in sorted(scored, reverse=True)[:k]]


def ids(items: list[ScoredItem]) -> list[str]:
    return [item.item_id for item in items]


@pytest.mark.anyio
async def test_versioned_knn_returns_the_exact_top_k_of_that_version_only(
    search: SearchEngine, corpus: Corpus
) -> None:
    hits = await search.knn(VersionedKnnQuery(corpus.v1, Similarity.DOT, QUERY, k=10))
    assert ids(hits) == expected_top(corpus, V1, 10)
    assert all(h.version == V1 for h in hits)
    # V2 vectors sit in the same field and are the closest to the query, yet none comes back.
    assert not {h.item_id for h in hits} & {i for i, v in corpus.versions.items() if v == V2}
    query = np.array(QUERY)
    for hit in hits:
        assert hit.score == pytest.approx(float(corpus.vectors[hit.item_id] @ query), rel=1e-5, abs=1e-5)
        assert hit.source["title"] == corpus.metadata[hit.item_id]["title"]

    v2_hits = await search.knn(VersionedKnnQuery(corpus.v2, Similarity.DOT, QUERY, k=100))
    assert {h.item_id for h in v2_hits} == {i for i, v in corpus.versions.items() if v == V2}
    assert all(h.version == V2 for h in v2_hits)


@pytest.mark.anyio
async def test_filter_inside_the_clause_returns_k_where_a_post_filter_returns_fewer(
    search: SearchEngine, corpus: Corpus, opensearch_client: OpenSearch
) -> None:
    tree = parse_filter({"op": "in", "field": "language", "values": ["rare"]})
    rare_v1 = [i for i, v in corpus.versions.items() if v == V1 and corpus.metadata[i]["language"] == "rare"]
    assert len(rare_v1) >= 10
    hits = await search.knn(VersionedKnnQuery(corpus.v1, Similarity.DOT, QUERY, k=10, filter=tree))
    assert len(hits) == 10
    assert ids(hits) == expected_top(corpus, V1, 10, tree)
    assert all(corpus.metadata[h.item_id]["language"] == "rare" for h in hits)

    # The same intent as a post-filter: k-NN first, filter after — the rare items are far, so few survive.
    body = knn_body(VersionedKnnQuery(corpus.v1, Similarity.DOT, QUERY, k=10))
    post = {
        "size": 10,
        "query": {"bool": {"must": [body["query"]], "filter": [{"terms": {"language": ["rare"]}}]}},
    }
    post_hits = opensearch_client.search(index=corpus.index, body=post)["hits"]["hits"]
    assert len(post_hits) < 10


@pytest.mark.anyio
async def test_exclusions_and_oversampling(search: SearchEngine, corpus: Corpus) -> None:
    top = expected_top(corpus, V1, 3)
    query = VersionedKnnQuery(
        corpus.v1, Similarity.DOT, QUERY, k=10, exclude_ids=frozenset(top), candidates=50
    )
    hits = await search.knn(query)
    assert len(hits) == 10
    assert ids(hits) == expected_top(corpus, V1, 10, exclude=frozenset(top))


@pytest.mark.anyio
async def test_exact_scoring_ranks_like_numpy_under_the_same_filter(
    search: SearchEngine, corpus: Corpus
) -> None:
    tree = parse_filter({"op": "and", "children": [{"op": "in", "field": "tags", "values": ["fantasy"]}]})
    query = VersionedKnnQuery(corpus.v1, Similarity.DOT, QUERY, k=15, filter=tree)
    exact = await search.exact(query)
    assert ids(exact) == expected_top(corpus, V1, 15, tree)
    approx = await search.knn(query)
    assert ids(approx) == ids(exact)
    for a, e in zip(approx, exact, strict=True):
        assert a.score == pytest.approx(e.score, rel=1e-5, abs=1e-5)


@pytest.mark.anyio
async def test_fallback_scores_items_without_a_vector_of_the_version(
    search: SearchEngine, corpus: Corpus
) -> None:
    terms = (WeightedTerm("tags", "fantasy", 2.0), WeightedTerm("authors", "author1", 0.5))
    prior = Prior(popularity=1.0, rating=0.5)
    tree = parse_filter({"op": "range", "field": "year", "gte": 1960})
    hits = await search.fallback(
        FallbackQuery(corpus.v1, k=N, terms=terms, filter=tree, prior=prior, exclude_ids=frozenset({"b003"})),
    )
    wanted = {
        i for i, v in corpus.versions.items() if v != V1 and matches(tree, corpus.metadata[i]) and i != "b003"
    }
    assert {h.item_id for h in hits} == wanted
    for hit in hits:
        meta = corpus.metadata[hit.item_id]
        expected = (
            sum(t.weight for t in terms if t.value in meta[t.field])
            + prior.popularity * math.log10(1 + meta["ratings_count"])
            + prior.rating * meta["average_rating"] / 5
        )
        assert hit.score == pytest.approx(expected, rel=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.anyio
async def test_popular_list_under_filters(search: SearchEngine, corpus: Corpus) -> None:
    tree = parse_filter({"op": "in", "field": "language", "values": ["eng"]})
    hits = await search.popular(PopularQuery(corpus.index, k=5, filter=tree))
    eng = [i for i, m in corpus.metadata.items() if m["language"] == "eng"]
    prior = {
        i: math.log10(1 + corpus.metadata[i]["ratings_count"]) + corpus.metadata[i]["average_rating"] / 5
        for i in eng
    }
    assert ids(hits) == sorted(eng, key=lambda i: (-prior[i], i))[:5]


@pytest.mark.anyio
async def test_counts_and_read_back(search: SearchEngine, corpus: Corpus) -> None:
    assert await search.count(corpus.index) == N
    assert await search.count(corpus.index, count_body(corpus.v2)) == sum(
        v == V2 for v in corpus.versions.values()
    )
    tree = parse_filter({"op": "exists", "field": "year"})
    assert await search.count(corpus.index, count_body(None, tree)) == N
    got = await search.get_items(corpus.index, ["b001", "b005", "nope"])
    assert set(got) == {"b001", "b005"}
    assert got["b001"]["emb_als_d4_a_version"] == V1


@pytest.mark.anyio
async def test_a_hit_of_another_version_is_refused(corpus: Corpus) -> None:
    query = VersionedKnnQuery(corpus.v1, Similarity.DOT, QUERY, k=1)
    response = {"hits": {"hits": [{"_id": "x", "_score": 2.0, "_source": {corpus.v1.version_field: V2}}]}}
    with pytest.raises(VersionMismatch, match=V2):
        parse_vector_hits(response, query)
