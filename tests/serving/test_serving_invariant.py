"""The lockstep invariant under concurrent version advances: one version per score."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import redis
from opensearchpy import OpenSearch
from serving_stack import Stack, start_stack
from serving_support import TYPE_A, World, build_world, set_in_use

from contract.indexing import Mode
from contract.settings import Settings

ROUNDS = 60  # responses each reader checks at least
FLIPS = 6  # in_use moves while the readers run
DEADLINE_SECONDS = 60.0  # for serving to answer in a new in_use version; a failure, never a pace


def _check(world: World, user: str, body: dict[str, Any]) -> None:
    """Each embedding similarity is the dot of user and item vectors of the response's version."""
    version = world.version(body["version"])
    for item in body["items"]:
        assert item["version"] == body["version"]
        assert item["explain"]["index"] == world.locations[version.name].index
        if item["scorer"] == "embedding":
            assert item["item_id"] in version.items, f"{item['item_id']} has no vector of {version.name}"
            expected = float(np.dot(version.users[user], version.items[item["item_id"]]))
            assert item["explain"]["similarity"] == pytest.approx(expected, abs=1e-4), (
                f"{item['item_id']}: a score that is not version {version.name}'s"
            )


def _run(stack: Stack) -> set[str]:
    """Recommend from 4 threads while a fifth flips in_use between V1 and V2; check every response."""
    # Each flip waits until a request sent after it is answered in the new version: the flips are paced
    # by what serving answers, never by a timer.
    world = stack.world
    v1, v2 = (v.name for v in world.versions)
    errors: list[BaseException] = []
    seen_versions: set[str] = set()
    progress = threading.Condition()
    flips = 0  # in_use moves completed so far
    answered: set[tuple[int, str]] = set()  # (moves completed when a request was sent, its version)
    flipping = threading.Event()
    flipping.set()

    def flipper() -> None:
        nonlocal flips
        headers = {"Authorization": f"Bearer {stack.settings.indexer_key.get_secret_value()}"}
        try:
            with httpx.Client(base_url=stack.orchestrator.url, headers=headers, timeout=10) as client:
                target = v2
                for flip in range(1, FLIPS + 1):
                    set_in_use(client, TYPE_A, target)
                    with progress:
                        flips = flip

                        def followed(flip: int = flip, target: str = target) -> bool:
                            return (flip, target) in answered or bool(errors)

                        if not progress.wait_for(followed, timeout=DEADLINE_SECONDS):
                            raise AssertionError(
                                f"serving never answered in {target} after in_use moved to it"
                            )
                    target = v1 if target == v2 else v2
        except BaseException as exc:
            errors.append(exc)
        finally:
            flipping.clear()

    def reader(offset: int) -> None:
        try:
            with httpx.Client(base_url=stack.serving.url, timeout=10, headers=stack.client.headers) as client:
                n = 0
                while n < ROUNDS or flipping.is_set():
                    with progress:
                        sent_after = flips
                    user = f"u{(offset * 7 + n) % 30}"
                    body = {"user_id": user, "embedding_type": TYPE_A, "k": 10, "explain": True}
                    response = client.post("/v1/recommend", json=body)
                    assert response.status_code == 200, response.text
                    payload = response.json()
                    assert payload["degraded"] is False
                    _check(world, user, payload)
                    with progress:
                        seen_versions.add(payload["version"])
                        answered.add((sent_after, payload["version"]))
                        progress.notify_all()
                    n += 1
        except BaseException as exc:
            with progress:
                errors.append(exc)
                progress.notify_all()

    flip = threading.Thread(target=flipper)
    readers = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    flip.start()
    for thread in readers:
        thread.start()
    flip.join()
    for thread in readers:
        thread.join()
    if errors:
        raise errors[0]
    return seen_versions


def test_incremental_advance_never_mixes_versions(stack: Stack) -> None:
    assert _run(stack) == {v.name for v in stack.world.versions}


@pytest.fixture
def shadow_stack(
    settings: Settings, redis_client: redis.Redis, opensearch_client: OpenSearch
) -> Iterator[Stack]:
    """A shadow-built world: one index per version, both registered."""
    world = build_world(settings, redis_client, opensearch_client, mode=Mode.SHADOW)
    yield from start_stack(settings, world, world.versions[0].name)


def test_shadow_swap_never_mixes_versions(shadow_stack: Stack) -> None:
    assert _run(shadow_stack) == {v.name for v in shadow_stack.world.versions}
