"""A recorded location naming an index that is not ours is never searched: serving treats it as unindexed."""

from __future__ import annotations

import httpx
import pytest
from serving_stack import Stack

from contract import routes
from contract.indexing import IndexedLocation, foreign_location, live_index, shadow_index

FOREIGN = [
    "other-items-als-d8-x",  # another prefix
    "_all",  # every index of the cluster
    "{prefix}-items-live/_doc/1?x=",  # a path of its own
    "{prefix}-items-other-type-{version}",  # another type's index
]


def _record(stack: Stack, location: IndexedLocation) -> None:
    key = stack.settings.indexer_key.get_secret_value()
    with httpx.Client(base_url=stack.orchestrator.url, timeout=10) as client:
        response = client.put(
            routes.indexed_path(stack.world.etype.name, location.version),
            json=location.model_dump(mode="json"),
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 204, response.text


def _answer(stack: Stack) -> tuple[int, set[str | None]]:
    """The status of an answer, and the indices its items were read from."""
    response = stack.recommend(user_id="u3", embedding_type=stack.world.etype.name, k=3, explain=True)
    if response.status_code != 200:
        return response.status_code, set()
    return 200, {item["explain"]["index"] for item in response.json()["items"]}


@pytest.mark.parametrize("foreign", FOREIGN)
def test_a_foreign_index_of_the_in_use_version_is_not_searched(stack: Stack, foreign: str) -> None:
    v1 = stack.world.versions[0].name
    good = stack.world.locations[v1]
    assert _answer(stack) == (200, {good.index})

    index = foreign.format(prefix=stack.settings.index_prefix, version=v1.lower())
    _record(stack, good.model_copy(update={"index": index}))
    # Within serving's staleness bound (0.2 s in these tests) it reads the new record: from then on the
    # in-use version counts as not indexed (409 NotServable), and no answer ever comes from the foreign index.
    status, indices = _answer(stack)
    while status == 200:
        assert indices == {good.index}
        status, indices = _answer(stack)
    assert status == 409
    refused = stack.recommend(user_id="u3", embedding_type=stack.world.etype.name, k=3)
    assert refused.json()["error"] == "NotServable"


def test_only_the_indexers_own_names_pass() -> None:
    base = IndexedLocation.model_validate(
        {
            "version": "20240101T000000Z-20240201T000000Z",
            "mode": "shadow",
            "index": shadow_index("lockstep", "als-d8", "20240101T000000Z-20240201T000000Z"),
            "vector_field": "emb_als_d8_a",
            "version_field": "emb_als_d8_a_version",
            "indexed_at": "2024-02-01T00:00:00Z",
            "item_count": 1,
        }
    )
    assert foreign_location("lockstep", "als-d8", base) is None
    live = base.model_copy(update={"mode": "incremental", "index": live_index("lockstep")})
    assert (
        foreign_location(
            "lockstep",
            "als-d8",
            live.model_copy(update={"vector_field": "emb_als_d8_b", "version_field": "emb_als_d8_b_version"}),
        )
        is None
    )
    assert foreign_location("other", "als-d8", base) is not None
    assert foreign_location("lockstep", "als-d9", base) is not None
    assert (
        foreign_location("lockstep", "als-d8", base.model_copy(update={"vector_field": "emb_x_a"}))
        is not None
    )
    assert (
        foreign_location("lockstep", "als-d8", live.model_copy(update={"index": "lockstep-items-live/_x"}))
        is not None
    )
