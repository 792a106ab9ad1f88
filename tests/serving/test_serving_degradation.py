"""Degradation through real network failures (proxies cut or slowed): never a 500, recovery within 5 s.

Serving's breakers run on a clock the tests advance, so "within 5 s" is 5 s of breaker time, however slow
the machine. Serving keeps type routing for a microsecond here: every request asks the orchestrator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from manual_clock import ManualClock
from serving_stack import Stack, start_stack
from serving_support import TYPE_A, World, metadata

from contract.filters import matches, parse_filter
from contract.settings import Settings
from serving.state import AppState

FRENCH = {"op": "in", "field": "language", "values": ["fre"]}


@pytest.fixture
def stack(settings: Settings, world: World) -> Iterator[Stack]:
    """The world served, V1 in use, type routing never reused (no waiting out the staleness bound)."""
    yield from start_stack(settings, world, world.versions[0].name, serving_staleness_seconds=1e-6)


@pytest.fixture
def clock(stack: Stack) -> ManualClock:
    """The clock of serving's breakers, installed before any request."""
    clock = ManualClock()
    state: AppState = stack.serving.app.state.serving
    state.orchestrator_breaker.clock = state.search_breaker.clock = clock
    return clock


def _recovers(stack: Stack, body: dict[str, object], clock: ManualClock, within: float = 5.0) -> None:
    """Asks every 0.1 s of breaker time until serving answers undegraded; fails after `within` seconds."""
    for _ in range(round(within / 0.1) + 1):
        response = stack.client.post("/v1/recommend", json=body)
        if response.status_code == 200 and not response.json()["degraded"]:
            return
        clock.advance(0.1)
    raise AssertionError(f"not recovered within {within} s")


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30  # only against a hang: the condition decides
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.01)


def test_orchestrator_down_gives_the_popular_list_under_the_same_filters(
    stack: Stack, clock: ManualClock
) -> None:
    request = {"user_id": "u1", "embedding_type": TYPE_A, "k": 8, "filters": FRENCH, "explain": True}
    assert stack.client.post("/v1/recommend", json=request).json()["degraded"] is False
    stack.orchestrator_link.down()
    for _ in range(3):  # the first trips the breaker, the rest short-circuit
        response = stack.client.post("/v1/recommend", json=request)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["degraded"] is True and "orchestrator" in body["degraded_reason"]
        assert body["version"] is None
        assert len(body["items"]) == 8
        assert all(i["scorer"] == "popular" for i in body["items"])
        tree = parse_filter(FRENCH)
        assert all(matches(tree, metadata(int(i["item_id"]) - 1000)) for i in body["items"])
        assert not set(stack.world.profiles["u1"]) & {i["item_id"] for i in body["items"]}
    stack.orchestrator_link.up()
    _recovers(stack, request, clock)


def test_slow_orchestrator_times_out_into_a_degraded_answer(stack: Stack, clock: ManualClock) -> None:
    request = {"user_id": "u2", "embedding_type": TYPE_A, "k": 5}
    assert stack.client.post("/v1/recommend", json=request).json()["degraded"] is False
    stack.orchestrator_link.delay = 1.5  # above serving's 0.5 s orchestrator timeout
    response = stack.client.post("/v1/recommend", json={**request, "user_id": "u3"})
    # Waiting out the delay would have brought the orchestrator's answer: degraded means a timeout cut in.
    assert response.status_code == 200 and response.json()["degraded"] is True
    assert "orchestrator" in response.json()["degraded_reason"]
    stack.orchestrator_link.delay = 0.0
    stack.orchestrator_link.down()  # drop the slow connections still open
    stack.orchestrator_link.up()
    _recovers(stack, {**request, "user_id": "u4"}, clock)


def test_search_down_serves_the_cached_popular_list_or_503(stack: Stack, clock: ManualClock) -> None:
    request = {"user_id": "u5", "embedding_type": TYPE_A, "k": 6, "filters": FRENCH}
    assert stack.client.post("/v1/recommend", json=request).json()["degraded"] is False
    popular = stack.serving.app.state.serving.popular
    _until(lambda: any(popular.values()), "warmed the popular list in the background")
    stack.search_link.down()
    response = stack.client.post("/v1/recommend", json={**request, "user_id": "u6"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] is True and "search unavailable" in body["degraded_reason"]
    assert len(body["items"]) == 6 and all(i["scorer"] == "popular" for i in body["items"])
    assert all(metadata(int(i["item_id"]) - 1000)["language"] == "fre" for i in body["items"])
    never_seen = {**request, "filters": {"op": "range", "field": "year", "gte": 2015}}
    response = stack.client.post("/v1/recommend", json=never_seen)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json()["error"] == "Unavailable"
    ready = stack.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["opensearch"] is False
    stack.search_link.up()
    _recovers(stack, never_seen, clock)
    assert stack.client.get("/readyz").status_code == 200


def test_health_and_metrics(stack: Stack) -> None:
    assert stack.client.get("/healthz").json()["status"] == "ok"
    ready = stack.client.get("/readyz").json()
    assert ready["status"] == "ok" and ready["checks"] == {
        "opensearch": True,
        "orchestrator": True,
        "redis": True,
    }
    stack.recommend(user_id="u1", embedding_type=TYPE_A)
    metrics = stack.client.get("/metrics").text
    for name in (
        "lockstep_serving_requests_total",
        "lockstep_serving_items_total",
        "lockstep_serving_cache_total",
        'lockstep_serving_request_seconds_count{route="/v1/recommend"}',
        'lockstep_serving_step_seconds_bucket{le="+Inf",step="knn"}',
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        'python_gc_collections_total{generation="0"}',
    ):
        assert name in metrics


def _young_collections(stack: Stack) -> float:
    (line,) = (
        line
        for line in stack.client.get("/metrics").text.splitlines()
        if line.startswith('python_gc_collections_total{generation="0"}')
    )
    return float(line.split()[-1])


def test_young_collections_are_rare_under_load(stack: Stack) -> None:
    # At Python's default threshold (700 allocations) a young collection ran every few requests.
    stack.recommend(user_id="u1", embedding_type=TYPE_A)
    before = _young_collections(stack)
    for n in range(100):
        assert stack.recommend(user_id=f"u{n % 20}", embedding_type=TYPE_A).status_code == 200
    assert _young_collections(stack) - before <= 1
