"""A request's budget reaches its dependency calls: a slow dependency costs at most what is left of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serving_stack import Stack, start_stack
from serving_support import TYPE_A, World

from contract.settings import Settings

BUDGET = 0.4


@pytest.fixture
def tight_stack(settings: Settings, world: World) -> Iterator[Stack]:
    """Serving whose per-call timeouts (5 s) are far above its request budget (0.4 s)."""
    yield from start_stack(
        settings,
        world,
        world.versions[0].name,
        serving_deadline_seconds=BUDGET,
        serving_orchestrator_timeout_seconds=5.0,
        serving_opensearch_timeout_seconds=5.0,
    )


def test_a_slow_orchestrator_call_ends_with_the_request_budget(tight_stack: Stack) -> None:
    request = {"user_id": "u2", "embedding_type": TYPE_A, "k": 5}
    assert tight_stack.recommend(**request).json()["degraded"] is False
    tight_stack.orchestrator_link.delay = 2.0  # under the call's own timeout, over the request's budget
    response = tight_stack.recommend(**{**request, "user_id": "u3"})
    assert response.status_code == 200 and response.json()["degraded"] is True
    assert "budget ran out" in response.json()["degraded_reason"]


def test_a_slow_search_ends_with_the_request_budget(tight_stack: Stack) -> None:
    request = {"user_id": "u2", "embedding_type": TYPE_A, "k": 5}
    assert tight_stack.recommend(**request).json()["degraded"] is False
    tight_stack.search_link.delay = 2.0
    response = tight_stack.recommend(**{**request, "user_id": "u3", "k": 6})
    assert response.status_code in (200, 503)
    body = response.json()
    reason = body.get("degraded_reason") or body.get("detail")
    assert "budget ran out" in reason, body
