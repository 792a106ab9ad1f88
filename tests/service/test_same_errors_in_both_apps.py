"""The orchestrator and serving answer the same bad input with the same status, shape, name and detail."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI

from contract import routes
from contract.settings import Settings
from contract.wire import MAX_BODY_BYTES, ErrorBody
from orchestrator.main import create_app as create_orchestrator
from serving.main import create_app as create_serving

pytestmark = pytest.mark.anyio

OVERSIZED = b'{"attributes": [' + b" " * MAX_BODY_BYTES + b"]}"


@dataclass(frozen=True)
class Target:
    """An app and its JSON POST route, with a key its route admits."""

    create: Callable[[Settings], FastAPI]
    post_route: str
    headers: dict[str, str] = field(default_factory=dict)


def _targets(settings: Settings) -> dict[str, Target]:
    key = settings.reader_keys[0].get_secret_value()
    return {
        "orchestrator": Target(
            create_orchestrator,
            routes.aggregate_path("als-d8"),
            {"Authorization": f"Bearer {key}"},
        ),
        "serving": Target(create_serving, "/v1/recommend", {"Authorization": f"Bearer {key}"}),
    }


@asynccontextmanager
async def _running(target: Target, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = target.create(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


async def _streamed(body: bytes) -> AsyncIterator[bytes]:
    """No Content-Length: the limit must be found while the body streams in."""
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


def _cases(target: Target) -> dict[str, tuple[str, str, dict[str, object]]]:
    """Case name -> (method, path, httpx request arguments), the same input for each app."""
    post = {"headers": {**target.headers, "Content-Type": "application/json"}}
    return {
        "malformed JSON": ("POST", target.post_route, {**post, "content": b"{not json"}),
        "oversized body": ("POST", target.post_route, {**post, "content": OVERSIZED}),
        "oversized streamed body": ("POST", target.post_route, {**post, "content": _streamed(OVERSIZED)}),
        "unknown route": ("GET", "/v1/no-such-route", {}),
        "wrong method": ("DELETE", target.post_route, {"headers": target.headers}),
        "failing field": (
            "POST",
            target.post_route,
            {**post, "json": {"attributes": [{"id": "tag:a", "weight": 1}, {"id": "tag:b", "weight": -2}]}},
        ),
    }


EXPECTED = {
    "malformed JSON": (400, "BadRequest", "body: not valid JSON (Expecting property name"),
    "oversized body": (413, "BodyTooLarge", f"body: larger than {MAX_BODY_BYTES} bytes"),
    "oversized streamed body": (413, "BodyTooLarge", f"body: larger than {MAX_BODY_BYTES} bytes"),
    "unknown route": (404, "NotFound", "path: Not Found"),
    "wrong method": (405, "MethodNotAllowed", "path: Method Not Allowed"),
    "failing field": (422, "InvalidField", "attributes[1].weight: weight -2.0 must be finite, > 0"),
}


async def test_both_apps_answer_the_same_bad_input_alike(settings: Settings) -> None:
    answers: dict[str, dict[str, tuple[int, dict[str, str], str | None]]] = {}
    for app_name, target in _targets(settings).items():
        async with _running(target, settings) as client:
            for case, (method, path, arguments) in _cases(target).items():
                response = await client.request(method, path, **arguments)  # type: ignore[arg-type]
                answer = (response.status_code, response.json(), response.headers.get("allow"))
                answers.setdefault(case, {})[app_name] = answer
    for case, (status, name, detail) in EXPECTED.items():
        orchestrator, serving = answers[case]["orchestrator"], answers[case]["serving"]
        assert orchestrator == serving, case  # status, body and Allow header alike
        assert orchestrator[0] == status, (case, orchestrator)
        assert set(orchestrator[1]) == {"error", "detail"}, (case, orchestrator)
        assert ErrorBody.model_validate(orchestrator[1]).error == name, (case, orchestrator)
        assert orchestrator[1]["detail"].startswith(detail), (case, orchestrator)
    assert answers["wrong method"]["serving"][2] == "POST"
