"""Both services check the key before they read a body, deny routes by default, and refuse dev keys.

No lifespan runs here: a refused request must be answered from the headers alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import SecretStr
from starlette.routing import BaseRoute

from contract import routes
from contract.settings import Settings
from contract.wire import MAX_BODY_BYTES
from orchestrator.main import create_app as create_orchestrator
from service.auth import Role, route_level
from serving.main import create_app as create_serving

pytestmark = pytest.mark.anyio

APPS: dict[str, Callable[[Settings], FastAPI]] = {
    "orchestrator": create_orchestrator,
    "serving": create_serving,
}
JSON_POSTS = {
    "orchestrator": routes.aggregate_path("als-d8"),
    "serving": "/v1/recommend",
}
# Routes that hold no data of anyone's: probes, metrics, the explorer page and its files.
PUBLIC = {
    "orchestrator": {"/healthz", "/readyz", "/metrics"},
    "serving": {"/healthz", "/readyz", "/metrics", "/", "/explorer/{name}"},
}
BAD_BODIES = {
    "not JSON": b"{not json",
    "wrong shape": b'{"k": "many", "user_id": []}',
    "nested deep": b"[" * 100_000 + b"]" * 100_000,
    "just under the size limit": b'{"attributes": [' + b" " * (MAX_BODY_BYTES - 64) + b"]}",
}


def _settings(**update: object) -> Settings:
    return Settings(development=True).model_copy(update=update)


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        yield client


@pytest.mark.parametrize("app_name", APPS)
@pytest.mark.parametrize("body_name", BAD_BODIES)
async def test_a_request_without_a_key_is_refused_before_its_body_is_parsed(
    app_name: str, body_name: str
) -> None:
    app = APPS[app_name](_settings())
    async for client in _client(app):
        response = await client.post(
            JSON_POSTS[app_name], content=BAD_BODIES[body_name], headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "Unauthorized"
        assert response.json()["detail"].startswith("authorization: missing API key")
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("app_name", APPS)
async def test_an_unknown_key_is_refused_before_the_body_is_parsed(app_name: str) -> None:
    app = APPS[app_name](_settings())
    async for client in _client(app):
        response = await client.post(
            JSON_POSTS[app_name],
            content=b"{",
            # The content type is a header the body check reads before routing; the body itself waits.
            headers={"Authorization": "Bearer not-a-key-of-ours", "Content-Type": "application/json"},
        )
        assert (response.status_code, response.json()["detail"]) == (401, "authorization: unknown API key")


@pytest.mark.parametrize("app_name", APPS)
async def test_the_dev_keys_are_refused_outside_development_mode(app_name: str) -> None:
    app = APPS[app_name](_settings(development=False, reader_keys=[SecretStr("own-reader-key-1")]))
    async for client in _client(app):
        for key in ("dev-reader-1", "dev-admin-1"):
            response = await client.post(
                JSON_POSTS[app_name],
                content=b"{",
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            assert response.status_code == 401
            assert "development keys are refused" in response.json()["detail"]
        # A configured key passes the check (what happens next needs the lifespan, which does not run here).
        response = await client.post(
            JSON_POSTS[app_name], content=b"{", headers={"X-API-Key": "own-reader-key-1"}
        )
        assert response.status_code not in (401, 403)


def _api_routes(found: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, also those of included routers (FastAPI 0.165 keeps them as one entry per router)."""
    for route in found:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


@pytest.mark.parametrize("app_name", APPS)
def test_every_route_declares_its_roles_or_is_listed_public(app_name: str) -> None:
    app = APPS[app_name](_settings())
    guarded: dict[str, Role] = {}
    public: set[str] = set()
    for route in _api_routes(app.routes):
        level = route_level(route)
        if level is None:
            public.add(route.path)
        else:
            guarded[route.path] = level
    assert public == PUBLIC[app_name]
    assert guarded, "no route is guarded"
    if app_name == "serving":
        assert guarded["/v1/users"] is Role.ADMIN
        assert guarded["/v1/users/{user_id}/history"] is Role.ADMIN
        assert guarded["/v1/recommend"] is Role.READER
