"""One error shape: the renderer, the validation formatter, the router's refusals, bugs, OpenAPI."""

from __future__ import annotations

import httpx
import orjson
import pytest
from fastapi import FastAPI
from service_support import Observed

from contract.errors import ErrorName
from contract.wire import ErrorBody
from service.errors import BodyTooLarge, Forbidden, InvalidField, ServiceError, Unauthorized
from service.openapi import documented
from service.rendering import render
from service.validation import describe_validation, field_path

pytestmark = pytest.mark.anyio


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")


def test_an_error_class_is_named_after_its_wire_name() -> None:
    assert (Forbidden.name, Forbidden.status) == (ErrorName.FORBIDDEN, 403)
    assert (BodyTooLarge.name, BodyTooLarge.status) == (ErrorName.BODY_TOO_LARGE, 413)
    with pytest.raises(ValueError, match="NotAWireName"):

        class NotAWireName(ServiceError):  # noqa: N818 - the point: not a wire name
            status = 418


def test_the_renderer_writes_name_detail_status_and_headers() -> None:
    response = render(Unauthorized("authorization: no API key"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    body = orjson.loads(response.body)
    assert body == {"error": "Unauthorized", "detail": "authorization: no API key"}
    assert ErrorBody.model_validate(body).error is ErrorName.UNAUTHORIZED


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("body", "attributes", 0, "weight"), "attributes[0].weight"),
        (("query", "limit"), "limit"),
        (("path", "item_id"), "item_id"),
        (("attributes", 12), "attributes[12]"),
        (("attributes", "9", 0, "id"), "attributes.9[0].id"),
        (("body",), "body"),
        ((), "body"),
    ],
)
def test_field_paths_have_one_style(loc: tuple[int | str, ...], path: str) -> None:
    assert field_path(loc) == path


def test_the_formatter_names_each_field_and_counts_the_rest() -> None:
    errors = [{"loc": ("body", "k", i), "msg": f"Value error, bad {i}"} for i in range(7)]
    assert (
        describe_validation(errors)
        == "k[0]: bad 0; k[1]: bad 1; k[2]: bad 2; k[3]: bad 3; k[4]: bad 4; and 2 more"
    )


async def test_a_field_failing_validation_is_invalid_field_naming_it(app: FastAPI) -> None:
    async with _client(app) as client:
        response = await client.post("/parsed", json={"attributes": [{"id": "tag:a", "weight": -1}]})
        path = await client.get("/items/-bad")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "InvalidField"
    assert body["detail"].startswith("attributes[0].weight: weight -1.0 must be"), body
    assert path.status_code == 422
    assert path.json()["detail"].startswith("item_id: "), path.json()


async def test_malformed_json_is_bad_request(app: FastAPI) -> None:
    async with _client(app) as client:
        response = await client.post(
            "/parsed", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest"
    assert response.json()["detail"].startswith("body: not valid JSON ("), response.json()


async def test_the_routers_refusals_use_the_shape(app: FastAPI) -> None:
    async with _client(app) as client:
        missing = await client.get("/nowhere")
        wrong = await client.delete("/parsed")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound", "detail": "path: Not Found"}
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "MethodNotAllowed", "detail": "path: Method Not Allowed"}
    assert wrong.headers["allow"] == "POST"


async def test_a_service_error_is_rendered_with_its_status(app: FastAPI) -> None:
    async with _client(app) as client:
        response = await client.get("/refused")
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden", "detail": "authorization: not for you"}


async def test_a_bug_is_a_500_without_its_traceback_and_the_connection_stays(
    app: FastAPI, observed: Observed, caplog: pytest.LogCaptureFixture
) -> None:
    async with _client(app) as client:
        response = await client.get("/broken")
    assert response.status_code == 500
    assert response.json() == {"error": "InternalError", "detail": "RuntimeError: unexpected error"}
    assert observed.requests == [("/broken", "GET", 500)]
    assert "a bug" in caplog.text  # the traceback goes to the log


async def test_openapi_documents_errors_as_error_body_and_the_security_schemes(app: FastAPI) -> None:
    responses = documented(InvalidField, Forbidden, Unauthorized, BodyTooLarge, InvalidField)
    assert sorted(responses) == [401, 403, 413, 422]
    assert responses[422] == {"model": ErrorBody, "description": "InvalidField"}
    async with _client(app) as client:
        spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"] == {"BearerKey": {"type": "http", "scheme": "bearer"}}
    assert spec["info"]["title"] == "probe"
