"""POST /v1/recommend dispatched straight to its endpoint (service.direct) answers as through the router."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from serving_stack import Stack, start_stack
from serving_support import World

from contract.settings import Settings

TIMING_FIELDS = ("took_ms", "timings")  # the only parts of an answer that differ between two calls


@pytest.fixture
def routed(settings: Settings, world: World) -> Iterator[Stack]:
    """The same world served with the direct dispatch off: every request goes through FastAPI's router."""
    yield from start_stack(settings, world, world.versions[0].name, serving_direct_dispatch=False)


def _requests(settings: Settings) -> list[tuple[str, dict[str, str], bytes]]:
    reader = f"Bearer {settings.reader_keys[0].get_secret_value()}"
    catalog = f"Bearer {settings.catalog_keys[0].get_secret_value()}"
    json_type = {"content-type": "application/json"}
    good = b'{"user_id": "u1", "k": 5}'
    return [
        ("POST", {**json_type, "authorization": reader}, good),
        ("POST", {**json_type, "x-api-key": settings.reader_keys[0].get_secret_value()}, good),
        ("POST", json_type, good),  # no key: 401
        ("POST", {**json_type, "authorization": "Bearer nope"}, good),  # unknown key: 401
        ("POST", {**json_type, "authorization": "Basic abc"}, good),  # not a bearer key: 401
        ("POST", {**json_type, "authorization": catalog}, good),  # a role that may not read: 403
        ("POST", {**json_type, "authorization": reader}, b'{"user_id": "u1", "k": 0}'),  # 422
        ("POST", {**json_type, "authorization": reader}, b'{"user_id": "u1", "user_id": "u2"}'),  # 422
        ("POST", {**json_type, "authorization": reader}, b'{"user_id": '),  # not JSON: 400
        ("POST", {**json_type, "authorization": reader}, b""),  # empty: 400
        ("POST", {**json_type, "authorization": reader}, b'{"user_id": "u1", "embedding_type": "nope"}'),
        ("POST", {"content-type": "text/plain", "authorization": reader}, good),  # 415
        ("POST", {**json_type, "authorization": reader}, b"[" * 2_000_000),  # 413
        ("GET", {"authorization": reader}, b""),  # 405 with Allow: POST
        ("PUT", {**json_type, "authorization": reader}, good),  # 405
    ]


def _answer(client: httpx.Client, method: str, headers: dict[str, str], body: bytes) -> tuple[object, ...]:
    response = client.request(method, "/v1/recommend", headers=headers, content=body)
    content = response.json()
    for name in TIMING_FIELDS:
        content.pop(name, None)
    kept = {name: response.headers.get(name) for name in ("content-type", "allow", "retry-after")}
    return response.status_code, content, kept


def test_every_answer_is_the_routers_answer(stack: Stack, routed: Stack, settings: Settings) -> None:
    with (
        httpx.Client(base_url=stack.serving.url, timeout=10) as direct,
        httpx.Client(base_url=routed.serving.url, timeout=10) as via_router,
    ):
        statuses = []
        for method, headers, body in _requests(settings):
            ours = _answer(direct, method, headers, body)
            assert ours == _answer(via_router, method, headers, body), (method, headers, body[:40])
            statuses.append(ours[0])
    assert statuses == [200, 200, 401, 401, 401, 403, 422, 422, 400, 400, 404, 415, 413, 405, 405]
    # Counted under the route's template either way.
    for served in (stack, routed):
        metrics = httpx.get(served.serving.url + "/metrics").text
        assert 'lockstep_serving_requests_total{route="/v1/recommend",status="200"} 2.0' in metrics
        assert 'lockstep_serving_requests_total{route="/v1/recommend",status="401"} 3.0' in metrics
