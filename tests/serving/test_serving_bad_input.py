"""Bad input never gets a 500: each case is a 4xx whose detail names the field."""

from __future__ import annotations

import json

from serving_stack import Stack
from serving_support import TYPE_A

from contract.wire import MAX_ATTRIBUTES


def _deep(depth: int) -> dict[str, object]:
    node: dict[str, object] = {"op": "exists", "field": "year"}
    for _ in range(depth):
        node = {"op": "not", "child": node}
    return node


_OK = '"user_id": "u1", "embedding_type": "als-d8"'

# (name, raw body text, expected status, a word the detail must contain)
CASES: list[tuple[str, str | bytes, int, str]] = [
    (
        "nan weight",
        '{"attributes": [{"id": "item:1001", "weight": NaN}], "embedding_type": "als-d8"}',
        422,
        "weight",
    ),
    ("infinity weight", '{"attributes": [{"id": "item:1001", "weight": Infinity}]}', 422, "weight"),
    ("-infinity weight", '{"attributes": [{"id": "item:1001", "weight": -Infinity}]}', 422, "weight"),
    ("1e999 weight", '{"attributes": [{"id": "item:1001", "weight": 1e999}]}', 422, "weight"),
    ("negative weight", '{"attributes": [{"id": "item:1001", "weight": -1}]}', 422, "weight"),
    ("weight as string", '{"attributes": [{"id": "item:1001", "weight": "heavy"}]}', 422, "weight"),
    ("weight as numeric string", '{"attributes": [{"id": "item:1001", "weight": "5"}]}', 422, "weight"),
    ("weight as signed string", '{"attributes": [{"id": "item:1001", "weight": "+10"}]}', 422, "weight"),
    (
        "weight in Arabic-Indic digits",
        '{"attributes": [{"id": "item:1001", "weight": "\u0661\u0660"}]}',
        422,
        "weight",
    ),
    ("weight as boolean", '{"attributes": [{"id": "item:1001", "weight": true}]}', 422, "weight"),
    ("k as signed string", "{" + _OK + ', "k": "+10"}', 422, "k"),
    ("k in Arabic-Indic digits", "{" + _OK + ', "k": "\u0661\u0660"}', 422, "k"),
    ("repeated key", '{"user_id": "u1", "embedding_type": "als-d8", "user_id": "u2"}', 422, "user_id"),
    ("user_id with a trailing newline", '{"user_id": "u1\\n", "embedding_type": "als-d8"}', 422, "user_id"),
    ("type with a trailing newline", '{"user_id": "u1", "embedding_type": "als-d8\\n"}', 422, "embedding"),
    ("attribute id with a newline", '{"attributes": [{"id": "item:1001\\n"}]}', 422, "attributes[0].id"),
    ("lone surrogate", '{"user_id": "u1", "embedding_type": "als-d8\\ud800"}', 400, "surrogate"),
    ("attribute without namespace", '{"attributes": [{"id": "1001", "weight": 1}]}', 422, "attributes[0].id"),
    ("empty attributes", '{"attributes": []}', 422, "attributes"),
    ("k = 0", "{" + _OK + ', "k": 0}', 422, "k"),
    ("k = 10^6", "{" + _OK + ', "k": 1000000}', 422, "k"),
    ("k as string", "{" + _OK + ', "k": "10"}', 422, "k"),
    ("k as float", "{" + _OK + ', "k": 10.5}', 422, "k"),
    ("k as bool", "{" + _OK + ', "k": true}', 422, "k"),
    ("user_id as number", '{"user_id": 5, "embedding_type": "als-d8"}', 422, "user_id"),
    ("user_id with spaces", '{"user_id": "a b", "embedding_type": "als-d8"}', 422, "user_id"),
    ("neither user nor attributes", '{"embedding_type": "als-d8"}', 422, "user_id"),
    ("unknown type", '{"user_id": "u1", "embedding_type": "no-such-type"}', 404, "embedding_type"),
    ("malformed type name", '{"user_id": "u1", "embedding_type": "Bad Type!"}', 422, "embedding_type"),
    (
        "unknown filter field",
        "{" + _OK + ', "filters": {"op": "in", "field": "colour", "values": ["red"]}}',
        422,
        "colour",
    ),
    ("unknown filter op", "{" + _OK + ', "filters": {"op": "near", "field": "year"}}', 422, "filters"),
    (
        "range on keyword",
        "{" + _OK + ', "filters": {"op": "range", "field": "language", "gte": 1}}',
        422,
        "language",
    ),
    ("filter depth 100", "{" + _OK + ', "filters": ' + json.dumps(_deep(100)) + "}", 422, "filters"),
    ("unknown body field", "{" + _OK + ', "colour": "red"}', 422, "colour"),
    ("exclude_seen as string", "{" + _OK + ', "exclude_seen": "yes"}', 422, "exclude_seen"),
    ("exclude ids not a list", "{" + _OK + ', "exclude_item_ids": "1001"}', 422, "exclude_item_ids"),
    (
        "10^5 attributes",
        json.dumps({"attributes": [{"id": f"item:{i}", "weight": 1} for i in range(100_000)]}),
        413,
        "body",
    ),
    (
        "MAX_ATTRIBUTES+1 attributes",
        json.dumps({"attributes": [{"id": f"item:{i}", "weight": 1} for i in range(MAX_ATTRIBUTES + 1)]}),
        422,
        "attributes",
    ),
    ("oversized body", b'{"user_id": "u1", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}', 413, "body"),
    ("non-JSON", "user_id=u1", 400, "body"),
    ("truncated JSON", '{"user_id": "u1", ', 400, "body"),
    ("JSON array", "[1, 2, 3]", 422, "body"),
    ("empty body", "", 400, "body"),
]


def test_at_least_24_cases() -> None:
    assert len(CASES) >= 24


def test_bad_recommend_bodies_get_4xx_naming_the_field(stack: Stack) -> None:
    failures = []
    for name, raw, status, word in CASES:
        content = raw.encode() if isinstance(raw, str) else raw
        response = stack.client.post(
            "/v1/recommend", content=content, headers={"Content-Type": "application/json"}
        )
        body = response.json()
        if (
            response.status_code != status
            or word not in body.get("detail", "")
            or set(body) != {"error", "detail"}
        ):
            failures.append(f"{name}: {response.status_code} {body}")
    assert not failures, "\n".join(failures)


SIMILAR_CASES: list[tuple[dict[str, str], str]] = [
    ({"k": "0"}, "k"),
    ({"k": "ten"}, "k"),
    ({"k": "1000000"}, "k"),
    ({"filters": "{not json"}, "filters"),
    ({"filters": '{"op": "in", "field": "colour", "values": ["x"]}'}, "colour"),
    ({"embedding_type": "Bad Type!"}, "embedding_type"),
    ({"k": "+10"}, "k"),
    ({"k": "\u0661\u0660"}, "k"),
    ({"k": " 10"}, "k"),
    ({"k": "1_0"}, "k"),
    ({"filters": '{"op": "exists", "field": "year", "field": "tags"}'}, "filters"),
    ({"embedding_type": "als-d8\n"}, "embedding_type"),
]


def test_bad_similar_queries_get_422_naming_the_field(stack: Stack) -> None:
    for params, word in SIMILAR_CASES:
        response = stack.client.get("/v1/items/1001/similar", params={"embedding_type": TYPE_A, **params})
        assert response.status_code == 422, (params, response.text)
        assert word in response.json()["detail"], params
    response = stack.client.get("/v1/items/1001/similar", params={"embedding_type": "no-such-type"})
    assert response.status_code == 404
    assert response.json()["error"] == "UnknownType"


CONTENT_TYPES: list[str | None] = [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]


def test_a_body_not_declared_json_is_a_415_naming_content_type(stack: Stack) -> None:
    for content_type in CONTENT_TYPES:
        headers = {"Content-Type": content_type} if content_type else {}
        # A cross-site form or fetch can send a "simple" POST (text/plain) without a CORS preflight.
        response = stack.client.post(
            "/v1/recommend", content=b'{"user_id": "u1", "embedding_type": "als-d8"}', headers=headers
        )
        assert response.status_code == 415, (content_type, response.text)
        assert response.json()["error"] == "UnsupportedMediaType"
        assert response.json()["detail"].startswith("content-type: ")
