"""Degradation through real network failures (proxies cut or slowed): never a 500, recovery within 5 s."""

from __future__ import annotations

import time

from serving_stack import Stack
from serving_support import TYPE_A, metadata

from contract.filters import matches, parse_filter

FRENCH = {"op": "in", "field": "language", "values": ["fre"]}


def _until_recovered(stack: Stack, body: dict[str, object], limit: float = 5.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        response = stack.client.post("/v1/recommend", json=body)
        if response.status_code == 200 and not response.json()["degraded"]:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not recovered within {limit} s")


def test_orchestrator_down_gives_the_popular_list_under_the_same_filters(stack: Stack) -> None:
    request = {"user_id": "u1", "embedding_type": TYPE_A, "k": 8, "filters": FRENCH, "explain": True}
    assert stack.client.post("/v1/recommend", json=request).json()["degraded"] is False
    time.sleep(0.3)  # past the staleness bound: serving must ask the orchestrator again
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
    assert _until_recovered(stack, request) < 5.0


def test_slow_orchestrator_times_out_into_a_degraded_answer(stack: Stack) -> None:
    request = {"user_id": "u2", "embedding_type": TYPE_A, "k": 5}
    assert stack.client.post("/v1/recommend", json=request).json()["degraded"] is False
    time.sleep(0.3)
    stack.orchestrator_link.delay = 1.5  # above serving's 0.5 s orchestrator timeout
    started = time.monotonic()
    response = stack.client.post("/v1/recommend", json={**request, "user_id": "u3"})
    assert time.monotonic() - started < 1.5
    assert response.status_code == 200 and response.json()["degraded"] is True
    stack.orchestrator_link.delay = 0.0
    stack.orchestrator_link.down()  # drop the slow connections still open
    stack.orchestrator_link.up()
    assert _until_recovered(stack, {**request, "user_id": "u4"}) < 5.0


def test_search_down_serves_the_cached_popular_list_or_503(stack: Stack) -> None:
    request = {"user_id": "u5", "embedding_type": TYPE_A, "k": 6, "filters": FRENCH}
    assert stack.client.post("/v1/recommend", json=request).json()["degraded"] is False
    time.sleep(0.5)  # the popular list for these filters is warmed in the background
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
    assert _until_recovered(stack, never_seen) < 5.0
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
    ):
        assert name in metrics
