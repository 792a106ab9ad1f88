"""One client's requests never degrade another's: refusals are the caller's, breakers open on outages only."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serving_stack import Stack, start_stack
from serving_support import TYPE_A, World

from contract.settings import Settings
from contract.wire import MAX_ATTRIBUTES

HEAVY_CLIENTS = 8


def test_an_id_that_cannot_be_a_path_segment_is_refused_naming_the_field(stack: Stack) -> None:
    response = stack.recommend(user_id="a/b", embedding_type=TYPE_A)
    assert response.status_code == 422
    assert response.json()["error"] == "InvalidField"
    assert response.json()["detail"].startswith("user_id")


def test_the_orchestrators_refusals_do_not_open_the_breaker(stack: Stack) -> None:
    # More concurrent refusals than the breaker's threshold: none of them is an outage.
    with ThreadPoolExecutor(HEAVY_CLIENTS) as pool:
        refused = list(
            pool.map(
                lambda _: stack.recommend(
                    attributes=[{"id": "tag:fantasy", "weight": 1.0}], embedding_type=TYPE_A
                ),
                range(HEAVY_CLIENTS * 2),
            )
        )
    assert {r.status_code for r in refused} == {422}
    other = stack.recommend(user_id="u1", embedding_type=TYPE_A)
    assert other.status_code == 200 and other.json()["degraded"] is False


def test_maximum_size_requests_do_not_degrade_another_users(stack: Stack) -> None:
    heaviest = {
        "attributes": [{"id": f"item:{'x' * 117}{n:06d}", "weight": 1.0} for n in range(MAX_ATTRIBUTES)],
        "embedding_type": TYPE_A,
    }
    with httpx.Client(base_url=stack.serving.url, timeout=60, headers=stack.client.headers) as heavy_client:

        def heavy(_: int) -> int:
            return heavy_client.post("/v1/recommend", json=heaviest).status_code

        with ThreadPoolExecutor(HEAVY_CLIENTS) as pool:
            pending = [pool.submit(heavy, n) for n in range(HEAVY_CLIENTS * 3)]
            others = []
            while not all(p.done() for p in pending):
                others.append(stack.recommend(user_id="u1", embedding_type=TYPE_A))
            statuses = [p.result() for p in pending]
    assert others, "the other user sent nothing while the heavy requests ran"
    # The heavy requests are legal: answered (or shed as overload), never failed.
    assert set(statuses) <= {200, 503}, statuses
    assert [r.status_code for r in others if r.status_code != 503] and all(
        r.json()["degraded"] is False for r in others if r.status_code == 200
    ), [r.json().get("degraded_reason") for r in others if r.status_code == 200]


@pytest.fixture
def single_slot_stack(settings: Settings, world: World) -> Iterator[Stack]:
    """Serving that works on one request at a time, with time budgets long enough to hold one in flight."""
    yield from start_stack(
        settings,
        world,
        world.versions[0].name,
        serving_max_in_flight=1,
        serving_deadline_seconds=30.0,
        serving_opensearch_timeout_seconds=30.0,
    )


def test_past_its_bound_serving_sheds_at_once_and_monitors_still_see_it(single_slot_stack: Stack) -> None:
    stack = single_slot_stack
    stack.search_link.delay = 5.0  # whichever request gets the slot holds it in its k-NN call
    with ThreadPoolExecutor(4) as pool:
        calls = [pool.submit(stack.recommend, user_id=f"u{n}", embedding_type=TYPE_A, k=7) for n in range(4)]
        ready = stack.client.get("/healthz")  # not counted against the bound
        answers = [call.result() for call in calls]
    stack.search_link.delay = 0.0
    shed = [a for a in answers if a.status_code == 503]
    assert shed, "no request was shed while the only slot was taken"
    assert [a.status_code for a in answers].count(200) >= 1
    assert all(a.json()["error"] == "Overloaded" and a.headers["Retry-After"] == "1" for a in shed)
    assert ready.status_code == 200
    metrics = stack.client.get("/metrics").text
    assert 'status="503"' in metrics
