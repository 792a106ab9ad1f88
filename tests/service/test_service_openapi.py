"""Both services' OpenAPI documents resolve and describe the errors really sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contract.settings import Settings
from orchestrator.main import create_app as create_orchestrator
from serving.main import create_app as create_serving

APPS: dict[str, Callable[[Settings], FastAPI]] = {
    "orchestrator": create_orchestrator,
    "serving": create_serving,
}


@pytest.fixture(params=list(APPS), ids=list(APPS))
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The app's OpenAPI document (built without running the app)."""
    document: dict[str, Any] = APPS[request.param](Settings(development=True)).openapi()
    return document


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key == "mapping" and isinstance(value, dict):
                yield from (v for v in value.values() if isinstance(v, str))
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def test_every_ref_resolves_and_nothing_is_left_inline(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        _resolve(document, ref)  # a KeyError names the dangling one
    assert "$defs" not in str(document)


def test_every_error_answer_is_documented_as_the_one_error_body(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(document)
    assert "ValidationError" not in document["components"]["schemas"]
    for name, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (name, status)
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(operation["responses"]), name
        if operation.get("parameters"):
            assert "422" in operation["responses"], name


def test_the_recommend_body_is_required_and_its_filters_resolve() -> None:
    document = create_serving(Settings(development=True)).openapi()
    body = document["paths"]["/v1/recommend"]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    filters = schema["properties"]["filters"]
    assert "#/components/schemas/AndFilter" in set(_refs(filters))
    assert _resolve(document, "#/components/schemas/RangeFilter")["properties"]["op"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/v1/embedding-types/t/indexed/20170101T000000Z-20170201T000000Z", "DELETE, PUT"),
        ("OPTIONS", "/v1/embedding-types/t:refresh", "POST"),  # not /v1/embedding-types/{type_name}'s GET
        ("PATCH", "/v1/embedding-types/t", "GET, HEAD"),
    ],
)
async def test_a_405_allows_the_methods_documented_for_the_resource(
    method: str, path: str, allow: str
) -> None:
    app = create_orchestrator(Settings(development=True))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"] == "MethodNotAllowed"
