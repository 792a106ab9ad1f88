"""Bad input: every case is a 4xx whose detail names the field, and nothing is written to Redis."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from orchestrator_support import AppFactory, Fixtures, auth, frame, indirect_type, rows

from contract import routes
from contract.keys import Kind
from contract.settings import Settings
from contract.wire import MAX_ATTRIBUTES, MAX_SAMPLE_USERS

pytestmark = pytest.mark.anyio

T = "tags-d8"
V1 = frame(1).version_id
V2 = frame(2).version_id  # published, indexed, not in use
V9 = frame(9).version_id  # well-formed, never published


@dataclass(frozen=True)
class Case:
    """One bad request and the answer it must get."""

    method: str
    path: str
    status: int
    error: str
    field: str  # the detail must start with this field path
    body: object = None
    raw: str | bytes | None = None  # sent verbatim (e.g. NaN, which strict JSON encoders refuse)
    role: str | None = "admin"  # admin passes every role check, so the body is what fails
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"  # of a raw body


CASES = {
    "unknown type": Case("GET", routes.user_vector_path("nope", "u1"), 404, "UnknownType", "type_name"),
    "malformed type": Case("GET", routes.user_vector_path("Bad T", "u1"), 422, "InvalidField", "type_name"),
    "malformed user id": Case("GET", routes.user_vector_path(T, "-x"), 422, "InvalidField", "user_id"),
    "unknown version": Case(
        "POST",
        routes.items_batch_path(T),
        404,
        "UnknownVersion",
        "version",
        body={"version": V9, "item_ids": ["1"]},
    ),
    "malformed version": Case(
        "POST",
        routes.items_batch_path(T),
        422,
        "InvalidField",
        "version",
        body={"version": "latest", "item_ids": ["1"]},
    ),
    "NaN weight": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes[0].weight",
        raw='{"attributes": [{"id": "tag:a", "weight": NaN}]}',
    ),
    "infinite weight": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes[0].weight",
        raw='{"attributes": [{"id": "tag:a", "weight": Infinity}]}',
    ),
    "negative weight": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes[1].weight",
        body={"attributes": [{"id": "tag:a", "weight": 1}, {"id": "tag:b", "weight": -2}]},
    ),
    "huge weight": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes[0].weight",
        body={"attributes": [{"id": "tag:a", "weight": 1e9}]},
    ),
    "empty attributes": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes",
        body={"attributes": []},
    ),
    "oversized attributes": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes",
        body={"attributes": [{"id": f"tag:t{i}"} for i in range(MAX_ATTRIBUTES + 1)]},
    ),
    "malformed attribute id": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes[0].id",
        body={"attributes": [{"id": "no-namespace"}]},
    ),
    "foreign namespace": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes[0].id",
        body={"attributes": [{"id": "author:rowling"}]},
    ),
    "both sources": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "body",
        body={"attributes": [{"id": "tag:a"}], "user_id": "u1"},
    ),
    "empty item ids": Case(
        "POST",
        routes.items_batch_path(T),
        422,
        "InvalidField",
        "item_ids",
        body={"version": V1, "item_ids": []},
    ),
    "too many item ids": Case(
        "POST",
        routes.items_batch_path(T),
        422,
        "InvalidField",
        "item_ids",
        body={"version": V1, "item_ids": [str(i) for i in range(1001)]},
    ),
    "malformed item id": Case(
        "POST",
        routes.items_batch_path(T),
        422,
        "InvalidField",
        "item_ids[1]",
        body={"version": V1, "item_ids": ["1", "bad id"]},
    ),
    "repeated item id": Case(
        "POST",
        routes.items_batch_path(T),
        422,
        "InvalidField",
        "item_ids[1]",
        body={"version": V1, "item_ids": ["1", "1"]},
    ),
    "attributes for an unrequested item": Case(
        "POST",
        routes.items_batch_path(T),
        422,
        "InvalidField",
        "attributes.9",
        body={"version": V1, "item_ids": ["1"], "attributes": {"9": [{"id": "tag:a"}]}},
    ),
    "wrong role": Case(
        "PUT",
        routes.in_use_path(T),
        403,
        "Forbidden",
        "authorization",
        body={"expected": V1, "version": V2},
        role="reader",
    ),
    "rollback by indexer": Case(
        "POST",
        routes.rollback_path(T),
        403,
        "Forbidden",
        "authorization",
        role="indexer",
    ),
    "missing key": Case(
        "PUT",
        routes.in_use_path(T),
        401,
        "Unauthorized",
        "authorization",
        body={"expected": V1, "version": V2},
        role=None,
    ),
    "unknown key": Case(
        "GET",
        routes.type_path(T),
        401,
        "Unauthorized",
        "authorization",
        role=None,
        headers={"X-API-Key": "not-a-key-at-all"},
    ),
    "not a bearer": Case(
        "GET",
        routes.type_path(T),
        401,
        "Unauthorized",
        "authorization",
        role=None,
        headers={"Authorization": "Basic dev-admin-1"},
    ),
    "oversized body": Case(
        "POST",
        routes.aggregate_path(T),
        413,
        "BodyTooLarge",
        "body",
        raw=b'{"attributes": [' + b" " * (2 << 20) + b"]}",
    ),
    "malformed target version": Case(
        "PUT",
        routes.in_use_path(T),
        422,
        "InvalidField",
        "version",
        body={"expected": V1, "version": "v2"},
    ),
    "unknown field": Case(
        "PUT",
        routes.in_use_path(T),
        422,
        "InvalidField",
        "force",
        body={"expected": V1, "version": V2, "force": True},
    ),
    "invalid json": Case(
        "PUT",
        routes.in_use_path(T),
        400,
        "BadRequest",
        "body",
        raw="{not json",
    ),
    "sample of an unknown version": Case(
        "GET", routes.users_sample_path(T) + f"?version={V9}", 404, "UnknownVersion", "version"
    ),
    "sample of a malformed version": Case(
        "GET", routes.users_sample_path(T) + "?version=latest", 422, "InvalidField", "version"
    ),
    "sample without a version": Case("GET", routes.users_sample_path(T), 422, "InvalidField", "version"),
    "sample of none": Case(
        "GET", routes.users_sample_path(T) + f"?version={V1}&count=0", 422, "InvalidField", "count"
    ),
    "sample over the limit": Case(
        "GET",
        routes.users_sample_path(T) + f"?version={V1}&count={MAX_SAMPLE_USERS + 1}",
        422,
        "InvalidField",
        "count",
    ),
    "sample count in words": Case(
        "GET", routes.users_sample_path(T) + f"?version={V1}&count=ten", 422, "InvalidField", "count"
    ),
    "history limit": Case(
        "GET",
        routes.in_use_history_path(T) + "?limit=0",
        422,
        "InvalidField",
        "limit",
    ),
    "indexed path/body mismatch": Case(
        "PUT",
        routes.indexed_path(T, V2),
        422,
        "InvalidField",
        "version",
        body={
            "version": V1,
            "mode": "shadow",
            "index": "i",
            "vector_field": "f",
            "version_field": "g",
            "indexed_at": "2026-11-21T00:00:00Z",
            "item_count": 1,
        },
    ),
    "weight as a string": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes[0].weight",
        body={"attributes": [{"id": "tag:a", "weight": "5"}]},
    ),
    "weight as a boolean": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "attributes[0].weight",
        body={"attributes": [{"id": "tag:a", "weight": True}]},
    ),
    "normalize as a number": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "normalize",
        body={"attributes": [{"id": "tag:a"}], "normalize": 1},
    ),
    "repeated key": Case(
        "PUT",
        routes.in_use_path(T),
        422,
        "InvalidField",
        "version",
        raw=f'{{"expected": "{V1}", "version": "{V9}", "version": "{V2}"}}',
    ),
    "text/plain body": Case(
        "PUT",
        routes.in_use_path(T),
        415,
        "UnsupportedMediaType",
        "content-type",
        raw=f'{{"expected": "{V1}", "version": "{V2}"}}',
        content_type="text/plain",
    ),
    "form body": Case(
        "POST",
        routes.rollback_path(T),
        415,
        "UnsupportedMediaType",
        "content-type",
        raw="reason=x",
        content_type="application/x-www-form-urlencoded",
    ),
    "version with a trailing newline": Case(
        "PUT",
        routes.in_use_path(T),
        422,
        "InvalidField",
        "version",
        body={"expected": V1, "version": V2 + "\n"},
    ),
    "user id with a trailing newline": Case(
        "POST",
        routes.aggregate_path(T),
        422,
        "InvalidField",
        "user_id",
        body={"user_id": "u1\n"},
    ),
    "item id with a trailing newline": Case(
        "POST",
        routes.items_batch_path(T),
        422,
        "InvalidField",
        "item_ids[0]",
        body={"version": V1, "item_ids": ["1\n"]},
    ),
    "history limit with a sign": Case(
        "GET",
        routes.in_use_history_path(T) + "?limit=%2B10",
        422,
        "InvalidField",
        "limit",
    ),
    "history limit in Arabic-Indic digits": Case(
        "GET",
        routes.in_use_history_path(T) + "?limit=%D9%A1%D9%A0",
        422,
        "InvalidField",
        "limit",
    ),
    # GET of /v1/embedding-types/{type_name} takes this path, but it names the refresh resource (POST).
    "GET of refresh": Case("GET", routes.type_refresh_path(T), 405, "MethodNotAllowed", "path"),
    "in-use to unpublished": Case(
        "PUT",
        routes.in_use_path(T),
        409,
        "NotPublished",
        "version",
        body={"expected": V1, "version": V9},
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(
    case: Case, app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype = indirect_type(T)
    fixtures.register(etype)
    for when in (frame(1), frame(2)):
        version = fixtures.publish(etype, when, {Kind.ITEM: rows("", 3, 8, 1), Kind.ATTRIBUTE: {}})
        fixtures.mark_indexed(etype, version)
    fixtures.set_in_use(etype, V1)
    before = fixtures.snapshot()
    headers = {**(auth(orch_settings, case.role) if case.role else {}), **case.headers}
    async with app_client(orch_settings) as client:
        if case.raw is not None:
            content = case.raw.encode() if isinstance(case.raw, str) else case.raw
            headers["Content-Type"] = case.content_type
            response = await client.request(case.method, case.path, content=content, headers=headers)
        else:
            response = await client.request(case.method, case.path, json=case.body, headers=headers)
    assert response.status_code == case.status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == case.error
    assert body["detail"].startswith(case.field), body["detail"]
    assert fixtures.snapshot() == before
