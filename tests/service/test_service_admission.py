"""Load shedding on a real uvicorn server: past max_in_flight 503 Overloaded at once; monitors answer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from service_support import Observed, build_app, served

LIMIT, BUDGET = 2, 7.5


@pytest.fixture
def held_app(observed: Observed) -> Iterator[tuple[str, dict[str, Any]]]:
    """A server admitting LIMIT requests at once; the state that holds and releases /held."""
    app = build_app(observed, max_in_flight=LIMIT, budget=BUDGET)
    with served(app) as url:
        state: dict[str, Any] = app.state.probe
        state["entered"], state["release"] = threading.Semaphore(0), threading.Event()
        try:
            yield url, state
        finally:
            state["release"].set()


def _hold(
    pool: ThreadPoolExecutor, url: str, state: dict[str, Any], count: int
) -> list[Future[httpx.Response]]:
    calls = [pool.submit(httpx.get, url + "/held", timeout=60) for _ in range(count)]
    for _ in range(count):
        assert state["entered"].acquire(timeout=60), "a held request never reached its route"
    return calls


def test_past_the_bound_requests_are_shed_with_retry_after(
    held_app: tuple[str, dict[str, Any]], observed: Observed
) -> None:
    url, state = held_app
    with ThreadPoolExecutor(LIMIT) as pool:
        calls = _hold(pool, url, state, LIMIT)
        shed = httpx.get(url + "/held", timeout=60)
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        assert shed.json()["error"] == "Overloaded"
        assert shed.json()["detail"].startswith("request: ")
        # Health and metrics routes are not counted: a monitor sees the process alive while it sheds.
        assert httpx.get(url + "/healthz", timeout=60).status_code == 200
        state["release"].set()
        held = [call.result() for call in calls]
    assert [r.status_code for r in held] == [200] * LIMIT
    # Each admitted request got the whole budget (minus the moment before its route ran).
    assert all(0 < r.json()["remaining"] <= BUDGET for r in held)
    # Freed slots admit again.
    state["release"].set()
    assert httpx.get(url + "/held", timeout=60).status_code == 200
    assert ("unmatched", "GET", 503) in observed.requests


def test_a_shed_request_body_is_not_read(held_app: tuple[str, dict[str, Any]]) -> None:
    url, state = held_app
    host, port = url.removeprefix("http://").split(":")
    with ThreadPoolExecutor(LIMIT) as pool:
        _hold(pool, url, state, LIMIT)
        # Headers promise a body that never comes: the answer must not wait for it.
        with socket.create_connection((host, int(port)), timeout=60) as conn:
            conn.sendall(
                b"POST /parsed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
            answer = conn.recv(65536)
        state["release"].set()
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b'"error":"Overloaded"' in answer
