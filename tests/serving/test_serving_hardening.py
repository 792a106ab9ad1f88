"""Hardening: no input gets a 5xx, errors keep the connection, and the body is parsed strictly."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from serving_stack import Stack
from serving_support import TYPE_A

from contract.filters import parse_filter
from contract.settings import DEV_ADMIN_KEYS
from contract.wire import MAX_BODY_BYTES
from search.errors import QueryRejected
from serving.errors import InvalidField, refused_filters

_OK = {"user_id": "u1", "embedding_type": TYPE_A}

# Filter values the field's type cannot hold (OpenSearch `integer` is 32-bit), and numbers past a double.
OUT_OF_RANGE: list[dict[str, object]] = [
    {"op": "range", "field": "year", "gte": 1e308},
    {"op": "range", "field": "year", "gte": 2**63},
    {"op": "range", "field": "year", "lt": -(2**31) - 1},
    {"op": "range", "field": "ratings_count", "lte": 2**31},
    {"op": "in", "field": "year", "values": [2**63]},
    {"op": "in", "field": "year", "values": [2000, 2**31]},
    {"op": "range", "field": "average_rating", "gte": 10**400},
    {"op": "range", "field": "year", "gte": 10**400},
]


def _raw_json(value: object) -> str:
    return json.dumps(value)  # json.dumps writes 10**400 as digits, which JSON allows


@pytest.mark.parametrize("tree", OUT_OF_RANGE, ids=[_raw_json(t)[:60] for t in OUT_OF_RANGE])
def test_filter_values_out_of_the_field_range_are_a_422_on_recommend(stack: Stack, tree: object) -> None:
    response = stack.client.post(
        "/v1/recommend",
        content=_raw_json({**_OK, "filters": tree}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "InvalidField"
    assert response.json()["detail"].startswith("filters"), response.text


@pytest.mark.parametrize("tree", OUT_OF_RANGE, ids=[_raw_json(t)[:60] for t in OUT_OF_RANGE])
def test_filter_values_out_of_the_field_range_are_a_422_on_similar(stack: Stack, tree: object) -> None:
    response = stack.client.get(
        "/v1/items/1001/similar", params={"embedding_type": TYPE_A, "filters": _raw_json(tree)}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("filters"), response.text


def test_the_largest_values_the_field_holds_are_served(stack: Stack) -> None:
    tree = {
        "op": "and",
        "children": [
            {"op": "range", "field": "year", "gte": -(2**31), "lte": 2**31 - 1},
            {"op": "in", "field": "ratings_count", "values": [2**31 - 1, -(2**31)]},
            {"op": "range", "field": "average_rating", "lt": 1.7976931348623157e308},
        ],
    }
    response = stack.recommend(**_OK, filters=tree)
    assert response.status_code == 200, response.text


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on an open socket, its answer read by Content-Length."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection; read so far: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        body += chunk
    return int(status_line.split()[1]), headers, body


def _post(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _chunked(path: str, pieces: list[bytes], headers: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\n{headers}\r\n"
    ).encode()
    return head + b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


_AGGREGATE = "/v1/embedding-types/als-d8/users:aggregate"
_KEY = f"Authorization: Bearer {DEV_ADMIN_KEYS[0]}\r\n"

# (name, service, the refused request, its status): each is answered and the connection serves the next.
REFUSED_THEN_SERVED: list[tuple[str, str, bytes, int]] = [
    (
        "filter out of range",
        "serving",
        _post("/v1/recommend", _raw_json({**_OK, "filters": OUT_OF_RANGE[1]}).encode()),
        422,
    ),
    ("not JSON", "serving", _post("/v1/recommend", b"{nope"), 400),
    ("unknown field", "serving", _post("/v1/recommend", b'{"user_id": "u1", "colour": 1}'), 422),
    ("unknown type", "serving", _post("/v1/recommend", b'{"user_id": "u1", "embedding_type": "nope"}'), 404),
    ("repeated key", "serving", _post("/v1/recommend", b'{"user_id": "u1", "user_id": "u2"}'), 422),
    ("text/plain", "serving", _post("/v1/recommend", json.dumps(_OK).encode(), "text/plain"), 415),
    ("declared too large", "serving", _post("/v1/recommend", b" " * (MAX_BODY_BYTES + 1)), 413),
    ("chunked too large", "serving", _chunked("/v1/recommend", [b"[", b" " * MAX_BODY_BYTES, b"]"]), 413),
    ("chunked, many chunks", "serving", _chunked("/v1/recommend", [b"[" + b" " * 1000] * 1100), 413),
    ("text/plain", "orchestrator", _post(_AGGREGATE, b'{"user_id": "u1"}', "text/plain"), 415),
    ("repeated key", "orchestrator", _post(_AGGREGATE, b'{"user_id": "u1", "user_id": "u1"}'), 422),
    (
        "chunked too large",
        "orchestrator",
        _chunked(_AGGREGATE, [b"[", b" " * MAX_BODY_BYTES, b"]"], _KEY),
        413,
    ),
]


@pytest.mark.parametrize(
    ("name", "service", "refused", "status"),
    REFUSED_THEN_SERVED,
    ids=[f"{service}: {name}" for name, service, _, _ in REFUSED_THEN_SERVED],
)
def test_a_refusal_keeps_the_connection_usable(
    stack: Stack, name: str, service: str, refused: bytes, status: int
) -> None:
    server = stack.serving if service == "serving" else stack.orchestrator
    if b"Authorization" not in refused:  # both services check the key before the body
        refused = refused.replace(b"\r\n\r\n", f"\r\n{_KEY}\r\n".encode(), 1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        answered, headers, body = _exchange(sock, refused)
        assert answered == status, (name, body)
        assert set(json.loads(body)) == {"error", "detail"}
        assert headers.get("connection", "").lower() != "close"
        answered, _, body = _exchange(sock, b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        assert answered == 200, body


def _requests_counted(url: str, route: str, status: str) -> float:
    """Requests a service's /metrics counts for the route template with that status (any method)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("lockstep_")
        and "_requests_total{" in line
        and f'route="{route}"' in line
        and f'status="{status}"' in line
    )


HANG_UPS = [
    ("serving", "/v1/recommend", "/v1/recommend", _KEY),
    ("orchestrator", _AGGREGATE, "/v1/embedding-types/{type_name}/users:aggregate", _KEY),
]


@pytest.mark.parametrize(("service", "path", "route", "headers"), HANG_UPS, ids=[h[0] for h in HANG_UPS])
def test_a_client_leaving_mid_body_is_counted_as_499_not_500(
    stack: Stack, service: str, path: str, route: str, headers: str
) -> None:
    server = stack.serving if service == "serving" else stack.orchestrator
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{headers}"
            'Content-Length: 1000\r\n\r\n{"user_id": "u1", '.encode()
        )
    deadline = time.monotonic() + 10
    while _requests_counted(server.url, route, "499") < 1:
        assert time.monotonic() < deadline, "the hang-up was never counted"
        time.sleep(0.05)
    assert _requests_counted(server.url, route, "500") == 0
    assert _requests_counted(server.url, route, "400") == 0


def test_an_opensearch_400_is_the_filters_fault_only_when_the_request_has_filters() -> None:
    rejected = QueryRejected(
        400, "k-NN search on t1-items-live: query_shard_exception: failed to create query"
    )
    refused = refused_filters(rejected, parse_filter({"op": "exists", "field": "year"}))
    assert isinstance(refused, InvalidField)
    assert (
        refused.detail
        == "filters: refused by the search engine (query_shard_exception: failed to create query)"
    )
    assert refused_filters(rejected, None) is rejected  # without filters it is our bug: a 500, logged
