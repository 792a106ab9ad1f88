"""First light: a recommendation through the real stack."""

from __future__ import annotations

from serving_stack import Stack
from serving_support import exact_top


def test_recommend_returns_the_exact_top_k_of_the_in_use_version(stack: Stack) -> None:
    v1 = stack.world.versions[0].name
    response = stack.recommend(user_id="u3", embedding_type="als-d8", k=10, explain=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == v1
    assert body["degraded"] is False
    ids = [item["item_id"] for item in body["items"]]
    expected = exact_top(stack.world, v1, "u3", 10, set(stack.world.profiles["u3"]))
    assert ids == expected
    assert all(item["scorer"] == "embedding" and item["version"] == v1 for item in body["items"])
