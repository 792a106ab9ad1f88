"""Types listing, latest polling (never half-published), on-demand refresh."""

from __future__ import annotations

import asyncio

import pytest
from orchestrator_support import (
    CONDITION_DEADLINE_SECONDS,
    AppFactory,
    Fixtures,
    auth,
    direct_type,
    eventually,
    frame,
    polled_once,
    rows,
)

from contract import routes
from contract.keys import Keys, Kind
from contract.settings import Settings

pytestmark = pytest.mark.anyio


async def test_type_detail_lists_family_versions_in_use_and_indexed(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype = direct_type()
        fixtures.register(etype)
        v1 = fixtures.publish(etype, frame(1), {Kind.USER: rows("u", 2, 8, 1), Kind.ITEM: rows("i", 3, 8, 2)})
        v2 = fixtures.publish(etype, frame(2), {Kind.USER: rows("u", 2, 8, 3), Kind.ITEM: rows("i", 3, 8, 4)})
        fixtures.mark_indexed(etype, v1)
        fixtures.set_in_use(etype, v1)

        response = await client.get(routes.type_path(etype.name), headers=auth(orch_settings, "reader"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["type"]["family"] == "direct-direct"
        assert body["type"]["dim"] == 8 and body["type"]["similarity"] == "dot"
        assert body["latest"] == v2
        assert body["in_use"] == v1
        assert [v["version"] for v in body["published"]] == [v1, v2]
        assert body["published"][0]["counts"] == {"user": 2, "item": 3, "attr": 0}
        assert [loc["version"] for loc in body["indexed"]] == [v1]

        listed = await client.get(routes.types_path(), headers=auth(orch_settings, "indexer"))
        assert listed.status_code == 200
        assert [t["type"]["name"] for t in listed.json()] == [etype.name]


async def test_latest_never_exposes_a_half_published_version(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings, keys: Keys
) -> None:
    async with app_client(orch_settings) as client:
        etype = direct_type()
        fixtures.register(etype)
        v1 = fixtures.publish(etype, frame(1), {Kind.USER: rows("u", 5, 8, 1)})
        later = frame(2)
        users = rows("u", 200, 8, 7)
        url = routes.type_path(etype.name)
        reader = auth(orch_settings, "reader")
        seen: set[str] = set()

        async def look() -> None:
            # The polled value and an on-demand refresh: whenever either reports the new version, it is
            # complete: manifest present, every vector stored.
            for response in (
                await client.get(url, headers=reader),
                await client.post(routes.type_refresh_path(etype.name), headers=reader),
            ):
                latest = response.json()["latest"]
                seen.add(latest)
                if latest == later.version_id:
                    assert fixtures.client.exists(keys.manifest(etype.name, latest))
                    assert fixtures.stored_count(etype, latest, Kind.USER) == 200

        loop = asyncio.get_running_loop()

        def between_chunks(_done: int, _total: int) -> None:
            # The publisher waits while the app is asked, so every partial state is looked at.
            asyncio.run_coroutine_threadsafe(look(), loop).result(timeout=CONDITION_DEADLINE_SECONDS)

        # Vectors trickle in (as a big publish would), then the manifest is committed last.
        await asyncio.to_thread(
            fixtures.publish, etype, later, {Kind.USER: users}, chunk_size=20, progress=between_chunks
        )
        await look()
        assert seen == {v1, later.version_id}


async def test_refresh_picks_up_a_new_version_before_the_next_poll(
    app_client: AppFactory, fixtures: Fixtures, settings: Settings
) -> None:
    slow = settings.model_copy(update={"orchestrator_poll_seconds": 3600})
    etype = direct_type()
    fixtures.register(etype)
    v1 = fixtures.publish(etype, frame(1), {Kind.USER: rows("u", 1, 8, 1)})
    async with app_client(slow) as client:
        await polled_once(client, slow)  # the next poll is an hour away
        headers = auth(slow, "reader")
        assert (await client.get(routes.type_path(etype.name), headers=headers)).json()["latest"] == v1
        v2 = fixtures.publish(etype, frame(2), {Kind.USER: rows("u", 1, 8, 2)})
        stale = await client.get(routes.type_path(etype.name), headers=headers)
        assert stale.json()["latest"] == v1  # polled value until the next poll...
        fresh = await client.post(routes.type_refresh_path(etype.name), headers=headers)
        assert fresh.status_code == 200
        assert fresh.json()["latest"] == v2  # ...or an on-demand refresh
        assert (await client.get(routes.type_path(etype.name), headers=headers)).json()["latest"] == v2


async def test_unknown_type_is_404(app_client: AppFactory, orch_settings: Settings) -> None:
    async with app_client(orch_settings) as client:
        response = await client.get(routes.type_path("nope"), headers=auth(orch_settings, "reader"))
        assert response.status_code == 404
        assert response.json() == {
            "error": "UnknownType",
            "detail": "type_name: no embedding type 'nope' is registered",
        }


async def test_an_unreadable_manifest_hides_only_its_own_version(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    """A manifest written under an older contract (here: no `buckets`) must not take every type down."""
    etype, other = direct_type("als-d8"), direct_type("bpr-d8")
    for t in (etype, other):
        fixtures.register(t)
    v1 = fixtures.publish(etype, frame(1), {Kind.USER: rows("u", 2, 8, 1)})
    v2 = fixtures.publish(etype, frame(2), {Kind.USER: rows("u", 2, 8, 2)})
    w1 = fixtures.publish(other, frame(1), {Kind.USER: rows("u", 2, 8, 3)})
    fixtures.drop_from_manifest(etype, v2, "buckets")
    fixtures.set_in_use(etype, v1)

    async with app_client(orch_settings) as client:
        await polled_once(client, orch_settings)
        headers = auth(orch_settings, "reader")
        listed = {
            t["type"]["name"]: t for t in (await client.get(routes.types_path(), headers=headers)).json()
        }
        assert [v["version"] for v in listed[etype.name]["published"]] == [v1]
        assert listed[etype.name]["latest"] == v1  # not the unreadable v2
        assert listed[other.name]["latest"] == w1
        user = await client.get(routes.user_vector_path(etype.name, "u0"), headers=headers)
        assert user.status_code == 200 and user.json()["version"] == v1
        metrics = (await client.get("/metrics")).text
        assert f'lockstep_orchestrator_unreadable_manifests{{type="{etype.name}"}} 1.0' in metrics

        fixtures.unpublish(etype, v2)  # repaired by unpublishing it

        async def gauge_gone() -> bool:
            return "lockstep_orchestrator_unreadable_manifests{" not in (await client.get("/metrics")).text

        await eventually(gauge_gone, "the next poll drops the repaired version from the gauge")
