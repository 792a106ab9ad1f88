"""Exact answers on demand (`exact: true`), and exact re-scoring of a quantized type's candidates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from opensearchpy import OpenSearch
from serving_stack import Stack, start_stack
from serving_support import N_USERS, TYPE_A, build_world, exact_top

from contract.settings import Settings
from contract.types import Encoder, IndexParams


def test_an_exact_request_is_the_exact_top_k_with_model_scores(stack: Stack) -> None:
    v1 = stack.world.versions[0]
    for user in ("u1", "u7"):
        body = stack.recommend(user_id=user, embedding_type=TYPE_A, k=10, exact=True, explain=True).json()
        assert body["version"] == v1.name
        expected = exact_top(stack.world, v1.name, user, 10, set(stack.world.profiles[user]))
        assert [i["item_id"] for i in body["items"]] == expected
        for item in body["items"]:
            exact = float(v1.users[user] @ v1.items[item["item_id"]])
            assert item["explain"]["similarity"] == pytest.approx(exact, rel=1e-4, abs=1e-4)


def test_exact_must_be_a_boolean(stack: Stack) -> None:
    response = stack.recommend(user_id="u1", embedding_type=TYPE_A, exact="yes")
    assert response.status_code == 422 and response.json()["detail"].startswith("exact")


@pytest.fixture
def quantized_stack(
    settings: Settings, redis_client: redis.Redis, opensearch_client: OpenSearch
) -> Iterator[Stack]:
    """The world with its type's graph on 7-bit scalar-quantized vectors."""
    world = build_world(settings, redis_client, opensearch_client, index=IndexParams(encoder=Encoder.SQ7))
    yield from start_stack(settings, world, world.versions[0].name)


def test_a_quantized_types_candidates_are_rescored_exactly(quantized_stack: Stack) -> None:
    world = quantized_stack.world
    v1 = world.versions[0]
    for n in range(N_USERS):
        user = f"u{n}"
        body = quantized_stack.recommend(user_id=user, embedding_type=TYPE_A, k=10, explain=True).json()
        expected = exact_top(world, v1.name, user, 10, set(world.profiles[user]))
        assert [i["item_id"] for i in body["items"]] == expected
        # Scores of the quantized graph are approximate; these are the exact script's, on the full vectors.
        for item in body["items"]:
            exact = float(v1.users[user] @ v1.items[item["item_id"]])
            assert item["explain"]["similarity"] == pytest.approx(exact, rel=1e-5, abs=1e-5)
