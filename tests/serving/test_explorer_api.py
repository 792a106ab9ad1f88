"""The explorer page, its assets and JSON endpoints (types + audit trail, users, history), real stack."""

from __future__ import annotations

from serving_stack import Stack
from serving_support import N_USERS, TYPE_A, metadata

from contract import routes


def _title(iid: str) -> str:
    return str(metadata(int(iid) - 1000)["title"])


def test_the_page_and_its_assets_are_served_under_a_same_origin_policy(stack: Stack) -> None:
    page = stack.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/explorer/explorer.js" in page.text and '<table id="recs">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = stack.client.get("/explorer/explorer.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert stack.client.get("/explorer/explorer.css").headers["content-type"].startswith("text/css")
    for name in ("secrets.txt", "explorer.py"):
        missing = stack.client.get(f"/explorer/{name}")
        assert missing.status_code == 404
        assert missing.json()["error"] == "UnknownAsset"
    # A traversal never reaches the filesystem: the name is looked up in a fixed list, or matches no route.
    assert stack.client.get("/explorer/..%2F..%2Fmain.py").status_code == 404
    assert "/" not in stack.client.get("/openapi.json").json()["paths"]


def test_embedding_types_relay_versions_and_the_in_use_audit_trail(stack: Stack) -> None:
    v1, v2 = (v.name for v in stack.world.versions)
    response = stack.client.get(routes.types_path())
    assert response.status_code == 200, response.text
    [info] = response.json()
    assert info["type"]["name"] == TYPE_A
    assert (info["latest"], info["in_use"]) == (v2, v1)
    assert {loc["version"] for loc in info["indexed"]} == {v1, v2}
    assert [v["version"] for v in info["published"]] == [v1, v2]
    [change] = info["history"]
    assert (change["from_version"], change["to_version"], change["reason"]) == (None, v1, "test")
    assert change["role"] == "indexer"


def test_history_lists_the_profile_newest_first_with_titles_from_the_index(stack: Stack) -> None:
    seen = stack.world.profiles["u3"]
    response = stack.client.get("/v1/users/u3/history", params={"embedding_type": TYPE_A})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(seen)
    assert [i["item_id"] for i in body["items"]] == list(reversed(seen))
    assert [i["title"] for i in body["items"]] == [_title(i) for i in reversed(seen)]
    assert all(i["found"] and i["weight"] == 1.0 and i["authors"] for i in body["items"])
    limited = stack.client.get("/v1/users/u3/history", params={"limit": 2}).json()
    assert [i["item_id"] for i in limited["items"]] == list(reversed(seen))[:2]
    assert limited["total"] == len(seen)


def test_history_errors_name_the_field(stack: Stack) -> None:
    unknown = stack.client.get("/v1/users/nobody/history")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "UnknownUser", "detail": "user_id: no profile is stored for 'nobody'"}
    bad = stack.client.get("/v1/users/u3/history", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("limit")
    bad_type = stack.client.get("/v1/users/u3/history", params={"embedding_type": "Not A Type"})
    assert bad_type.status_code == 422 and bad_type.json()["detail"].startswith("embedding_type")
    no_type = stack.client.get("/v1/users/u3/history", params={"embedding_type": "no-such-type"})
    assert no_type.status_code == 404 and no_type.json()["error"] == "UnknownType"


def test_users_lists_profiled_users_in_natural_order(stack: Stack) -> None:
    body = stack.client.get("/v1/users", params={"limit": 1000}).json()
    assert body["users"] == [f"u{j}" for j in range(N_USERS)]
    assert len(stack.client.get("/v1/users", params={"limit": 5}).json()["users"]) == 5


def test_the_types_endpoint_reports_an_orchestrator_outage_as_unavailable(stack: Stack) -> None:
    stack.orchestrator_link.down()
    try:
        response = stack.client.get(routes.types_path())
    finally:
        stack.orchestrator_link.up()
    assert response.status_code == 503
    assert response.json()["error"] == "Unavailable"
    assert response.json()["detail"].startswith("orchestrator")
