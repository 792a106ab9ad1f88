"""Refusals the router makes itself (unknown path, wrong method) still use the house error shape."""

from __future__ import annotations

import pytest
from serving_stack import Stack

from serving.api.routes import recommend as recommend_route
from serving.api.routes import similar as similar_route


def test_unknown_path_and_wrong_method_use_the_error_shape(stack: Stack) -> None:
    missing = stack.client.get("/v1/no-such-route")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound", "detail": "path: Not Found"}

    wrong = stack.client.get("/v1/recommend")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "MethodNotAllowed"
    assert wrong.headers["allow"] == "POST"


def test_recommend_is_documented_and_renders_unexpected_errors_in_the_house_shape(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "post" in stack.client.get("/openapi.json").json()["paths"]["/v1/recommend"]

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(recommend_route, "recommend", broken)
    response = stack.client.post("/v1/recommend", json={"user_id": "u1"})
    assert response.status_code == 500
    assert response.json() == {"error": "InternalError", "detail": "RuntimeError: unexpected error"}
    metrics = stack.client.get("/metrics").text
    assert 'lockstep_serving_requests_total{route="/v1/recommend",status="500"} 1.0' in metrics


def test_routed_endpoints_render_unexpected_errors_in_the_house_shape(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(similar_route, "similar", broken)
    response = stack.client.get("/v1/items/1/similar")
    assert response.status_code == 500
    assert response.json() == {"error": "InternalError", "detail": "RuntimeError: unexpected error"}
