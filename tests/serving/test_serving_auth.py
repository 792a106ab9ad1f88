"""Serving's access control over the real stack: a key per route, user data for admin keys only."""

from __future__ import annotations

import httpx
from serving_stack import Stack
from serving_support import TYPE_A

from contract import routes

DATA_ROUTES = [
    ("POST", "/v1/recommend", {"user_id": "u3", "embedding_type": TYPE_A, "k": 3}),
    ("GET", "/v1/items/1003/similar", None),
    ("GET", routes.types_path(), None),
    ("GET", "/v1/users", None),
    ("GET", "/v1/users/u3/history", None),
]
USER_DATA = {"/v1/users", "/v1/users/u3/history"}


def _call(stack: Stack, key: str | None, method: str, path: str, body: object) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=stack.serving.url, timeout=10, headers=headers) as client:
        return client.request(method, path, json=body)


def test_every_data_route_refuses_a_request_without_a_key(stack: Stack) -> None:
    for method, path, body in DATA_ROUTES:
        response = _call(stack, None, method, path, body)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "Unauthorized"


def test_a_reader_key_gets_recommendations_but_no_user_data(stack: Stack) -> None:
    reader = stack.settings.reader_keys[0].get_secret_value()
    for method, path, body in DATA_ROUTES:
        response = _call(stack, reader, method, path, body)
        if path in USER_DATA:
            assert response.status_code == 403, (path, response.text)
            assert response.json()["detail"] == (
                "authorization: role reader may not call this route (needs admin)"
            )
        else:
            assert response.status_code == 200, (path, response.text)


def test_an_indexer_key_gets_no_user_data_either(stack: Stack) -> None:
    indexer = stack.settings.indexer_keys[0].get_secret_value()
    for path in sorted(USER_DATA):
        assert _call(stack, indexer, "GET", path, None).status_code == 403


def test_an_admin_key_reads_user_data(stack: Stack) -> None:
    admin = stack.settings.admin_keys[0].get_secret_value()
    users = _call(stack, admin, "GET", "/v1/users", None)
    assert users.status_code == 200 and "u3" in users.json()["users"]
    assert _call(stack, admin, "GET", "/v1/users/u3/history", None).json()["user_id"] == "u3"


def test_probes_metrics_and_the_page_need_no_key(stack: Stack) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/", "/explorer/explorer.js"):
        assert _call(stack, None, "GET", path, None).status_code == 200, path


def test_the_openapi_document_names_the_roles_of_each_route(stack: Stack) -> None:
    schema = _call(stack, None, "GET", "/openapi.json", None).json()
    assert set(schema["components"]["securitySchemes"]) == {"BearerKey", "ApiKeyHeader"}
    assert schema["paths"]["/v1/users"]["get"]["x-roles"] == ["admin"]
    assert schema["paths"]["/v1/recommend"]["post"]["x-roles"] == ["admin", "indexer", "reader"]
    assert "/healthz" in schema["paths"] and "security" not in schema["paths"]["/healthz"]["get"]
