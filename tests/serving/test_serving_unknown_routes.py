"""Refusals the router makes itself (unknown path, wrong method) still use the house error shape."""

from __future__ import annotations

from serving_stack import Stack


def test_unknown_path_and_wrong_method_use_the_error_shape(stack: Stack) -> None:
    missing = stack.client.get("/v1/no-such-route")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound", "detail": "path: Not Found"}

    wrong = stack.client.get("/v1/recommend")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "MethodNotAllowed"
    assert wrong.headers["allow"] == "POST"
