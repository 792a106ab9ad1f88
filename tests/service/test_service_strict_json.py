"""Strict bodies on the small app: JSON content type (415), each key once (422), text only (400)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from service_support import Observed

pytestmark = pytest.mark.anyio

ROUTES = ["/parsed", "/raw"]  # FastAPI parses the first, the route reads the second itself
GOOD = b'{"attributes": [{"id": "item:1", "weight": 2}]}'


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonx",
        "json",
    ],
)
async def test_a_body_that_is_not_declared_json_is_a_415(
    app: FastAPI, observed: Observed, route: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    async with _client(app) as client:
        response = await client.post(route, content=GOOD, headers=headers)
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["error"] == "UnsupportedMediaType"
    assert body["detail"].startswith("content-type: ")
    assert observed.requests == [("unmatched", "POST", 415)]  # refused before routing, before the body


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=UTF-8", "application/merge-patch+json"]
)
async def test_json_content_types_are_accepted(app: FastAPI, route: str, content_type: str) -> None:
    async with _client(app) as client:
        response = await client.post(route, content=GOOD, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


async def test_a_request_without_a_body_needs_no_content_type(app: FastAPI) -> None:
    async with _client(app) as client:
        response = await client.get("/items/a1")
    assert response.status_code == 200


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"attributes": [], "attributes": [{"id": "item:1"}]}', "attributes"),
        (b'{"attributes": [{"id": "item:1", "weight": 1, "weight": 2}]}', "weight"),
    ],
)
async def test_a_repeated_key_is_a_422_naming_it(app: FastAPI, route: str, raw: bytes, key: str) -> None:
    async with _client(app) as client:
        response = await client.post(route, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "InvalidField"
    assert response.json()["detail"].startswith(f"{key}: "), response.text


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"attributes": [{"id": "item:\\ud800"}]}', "surrogate"),
        (b'{"attributes": [{"id": "item:\xff"}]}', "UTF-8"),
        (b'\xef\xbb\xbf{"attributes": []}', "BOM"),
        (b'{"attributes": [' + b"1" * 5000 + b"]}", "digits"),
        (b"[" * 100_000, "nested"),
    ],
)
async def test_bodies_that_are_not_json_text_are_a_400(
    app: FastAPI, route: str, raw: bytes, words: str
) -> None:
    async with _client(app) as client:
        response = await client.post(route, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "BadRequest"
    assert response.json()["detail"].startswith("body: ")
    assert words in response.json()["detail"], response.text
