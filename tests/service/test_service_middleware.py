"""Body limit (declared or streamed) and request metrics, on the small app: 413s, 499s, route templates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from service_support import Observed, call_asgi

from contract.wire import MAX_ATTRIBUTES, MAX_BODY_BYTES, WeightedAttribute

pytestmark = pytest.mark.anyio

TOO_LARGE = {"error": "BodyTooLarge", "detail": f"body: larger than {MAX_BODY_BYTES} bytes"}
CHUNK = 64 * 1024
JSON = {"Content-Type": "application/json"}


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")


async def _streamed(total: int) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked): `total` bytes of a JSON array of spaces."""
    yield b"["
    sent = 2
    while sent < total:
        size = min(CHUNK, total - sent)
        yield b" " * size
        sent += size
    yield b"]"


def test_the_longest_legal_attribute_list_fits_the_body_limit() -> None:
    longest = WeightedAttribute(id="a:" + "b" * 126, weight=1.2345678901234567e-300)
    body = httpx.Request("POST", "http://x", json={"attributes": [longest.model_dump()] * MAX_ATTRIBUTES})
    assert len(body.content) < MAX_BODY_BYTES


@pytest.mark.parametrize("route", ["/parsed", "/raw"])
async def test_a_declared_length_over_the_limit_is_refused_before_the_app(
    app: FastAPI, observed: Observed, route: str
) -> None:
    async with _client(app) as client:
        response = await client.post(route, content=b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert observed.requests == [("unmatched", "POST", 413)]  # refused before routing


@pytest.mark.parametrize("route", ["/parsed", "/raw"])
async def test_a_streamed_body_is_refused_as_it_passes_the_limit(
    app: FastAPI, observed: Observed, route: str
) -> None:
    async with _client(app) as client:
        response = await client.post(route, content=_streamed(MAX_BODY_BYTES + CHUNK), headers=JSON)
        at_limit = await client.post("/raw", content=_streamed(MAX_BODY_BYTES), headers=JSON)
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert at_limit.status_code == 200
    assert at_limit.json() == {"bytes": MAX_BODY_BYTES}
    assert observed.requests == [(route, "POST", 413), ("/raw", "POST", 200)]


async def test_requests_are_observed_by_route_template_method_and_status(
    app: FastAPI, observed: Observed
) -> None:
    async with _client(app) as client:
        await client.get("/items/a1")
        await client.get("/items/a2")
        await client.get("/items/-bad")
        await client.get("/nowhere")
    assert observed.requests == [
        ("/items/{item_id}", "GET", 200),
        ("/items/{item_id}", "GET", 200),
        ("/items/{item_id}", "GET", 422),
        ("unmatched", "GET", 404),
    ]


@pytest.mark.parametrize("route", ["/parsed", "/raw"])
async def test_a_client_hanging_up_mid_body_is_a_499_not_a_500(
    app: FastAPI, observed: Observed, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    await call_asgi(app, "POST", route, [b'{"attributes": '], then_disconnect=True)
    assert observed.requests == [(route, "POST", 499)]
    assert "unexpected error" not in caplog.text  # not logged as a bug either


async def test_a_body_ended_normally_over_raw_asgi_is_answered(app: FastAPI, observed: Observed) -> None:
    sent = await call_asgi(app, "POST", "/raw", [b"ab", b"cd"], then_disconnect=False)
    assert sent[0]["status"] == 200
    assert observed.requests == [("/raw", "POST", 200)]
