"""Orchestrator refusals reach serving's callers as serving's errors; only outages trip the breaker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from pydantic import SecretStr
from serving_stack import Stack, start_stack
from serving_support import TYPE_A, World

from contract.keys import Keys
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from training.registry import register_type


def test_attributes_of_a_foreign_namespace_are_the_callers_invalid_field(stack: Stack) -> None:
    response = stack.recommend(attributes=[{"id": "tag:fantasy", "weight": 1.0}], embedding_type=TYPE_A)
    assert response.status_code == 422
    assert response.json()["error"] == "InvalidField"
    assert response.json()["detail"].startswith("attributes[0].id")


def test_attributes_without_any_vector_get_the_fallback_list(stack: Stack) -> None:
    response = stack.recommend(attributes=[{"id": "item:nope"}], embedding_type=TYPE_A, k=4, explain=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] is False and len(body["items"]) == 4
    assert all(
        i["scorer"] == "fallback" and "no vector" in i["explain"]["fallback_reason"] for i in body["items"]
    )


def test_a_type_without_an_in_use_version_is_not_servable(
    stack: Stack, redis_client: redis.Redis, settings: Settings
) -> None:
    fresh = EmbeddingType(name="new-d8", family=Family.DIRECT_DIRECT, dim=8, similarity=Similarity.DOT)
    register_type(redis_client, Keys(settings.key_prefix), fresh)
    response = stack.recommend(user_id="u1", embedding_type=fresh.name)
    assert response.status_code == 409
    assert response.json()["error"] == "NotServable"


@pytest.fixture
def stranger_stack(settings: Settings, world: World) -> Iterator[Stack]:
    """Serving holding a key the orchestrator does not know."""
    yield from start_stack(settings, world, world.versions[0].name, reader_key=SecretStr("not-a-known-key"))


def test_a_refused_key_is_unavailable_and_does_not_trip_the_breaker(stranger_stack: Stack) -> None:
    for _ in range(3):  # the breaker opens after two outages: a refusal is no outage
        response = stranger_stack.recommend(user_id="u1", embedding_type=TYPE_A)
        assert response.status_code == 503
        assert response.json()["error"] == "Unavailable"
        assert "Unauthorized" in response.json()["detail"]
        assert "circuit open" not in response.json()["detail"]
