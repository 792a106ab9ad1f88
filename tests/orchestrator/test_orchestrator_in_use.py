"""in_use: compare-and-set, refusals, audit trail, rollback rules, indexed records, replicas agreeing."""

from __future__ import annotations

import pytest
from orchestrator_support import AppFactory, Fixtures, auth, direct_type, frame, rows

from contract import routes
from contract.keys import Keys, Kind
from contract.settings import Settings
from contract.types import EmbeddingType

pytestmark = pytest.mark.anyio


def _three_versions(fixtures: Fixtures) -> tuple[EmbeddingType, list[str]]:
    etype = direct_type()
    fixtures.register(etype)
    versions = [
        fixtures.publish(etype, frame(m), {Kind.USER: rows("u", 2, 8, m), Kind.ITEM: rows("i", 2, 8, 10 + m)})
        for m in (1, 2, 3)
    ]
    return etype, versions


def _all_indexed_third_in_use(fixtures: Fixtures) -> tuple[EmbeddingType, list[str]]:
    """Three published versions, each indexed, the newest in use: the start of every rollback."""
    etype, versions = _three_versions(fixtures)
    for v in versions:
        fixtures.mark_indexed(etype, v)
    fixtures.set_in_use(etype, versions[-1])
    return etype, versions


def _put(expected: str | None, version: str, reason: str = "test") -> dict[str, str | None]:
    return {"expected": expected, "version": version, "reason": reason}


async def test_cas_moves_in_use_and_audits_it(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings, keys: Keys
) -> None:
    async with app_client(orch_settings) as client:
        etype, (v1, v2, _v3) = _three_versions(fixtures)
        fixtures.mark_indexed(etype, v1)
        fixtures.mark_indexed(etype, v2)
        url = routes.in_use_path(etype.name)
        indexer = auth(orch_settings, "indexer", 1)  # the second key works too (rotation)

        first = await client.put(url, json=_put(None, v1, "initial"), headers=indexer)
        assert first.status_code == 200, first.text
        assert first.json()["from_version"] is None and first.json()["to_version"] == v1
        second = await client.put(url, json=_put(v1, v2, "advance"), headers=indexer)
        assert second.status_code == 200, second.text
        assert fixtures.client.get(keys.in_use(etype.name)) == v2.encode()

        again = await client.put(url, json=_put(v2, v2), headers=indexer)  # no-op: no audit entry
        assert again.status_code == 200 and again.json()["from_version"] == v2

        history = await client.get(
            routes.in_use_history_path(etype.name), headers=auth(orch_settings, "reader")
        )
        assert history.status_code == 200
        entries = history.json()
        assert [(e["from_version"], e["to_version"], e["reason"]) for e in entries] == [
            (v1, v2, "advance"),
            (None, v1, "initial"),
        ]
        assert {e["actor"] for e in entries} == {"indexer#2"} and {e["role"] for e in entries} == {"indexer"}


async def test_cas_refusals_write_nothing(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype, (v1, v2, v3) = _three_versions(fixtures)
        fixtures.mark_indexed(etype, v1)
        fixtures.mark_indexed(etype, v3)
        fixtures.set_in_use(etype, v1)
        url = routes.in_use_path(etype.name)
        indexer = auth(orch_settings, "indexer")
        v4 = frame(4).version_id  # well-formed, never published
        fixtures.client.hset(fixtures.keys.indexed(etype.name), v4, "{}")  # even if someone marked it indexed
        before = fixtures.snapshot()

        stale = await client.put(url, json=_put(None, v3), headers=indexer)
        assert stale.status_code == 409 and stale.json()["error"] == "InUseConflict"
        assert "expected" in stale.json()["detail"]
        wrong = await client.put(url, json=_put(v2, v3), headers=indexer)
        assert wrong.status_code == 409 and wrong.json()["error"] == "InUseConflict"
        unindexed = await client.put(url, json=_put(v1, v2), headers=indexer)
        assert unindexed.status_code == 409 and unindexed.json()["error"] == "NotIndexed"
        unpublished = await client.put(url, json=_put(v1, v4), headers=indexer)
        assert unpublished.status_code == 409 and unpublished.json()["error"] == "NotPublished"
        reader = await client.put(url, json=_put(v1, v3), headers=auth(orch_settings, "reader"))
        assert reader.status_code == 403 and reader.json()["error"] == "Forbidden"
        assert fixtures.snapshot() == before


async def test_rollback_goes_to_newest_earlier_published_and_indexed(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype, (v1, v2, v3) = _all_indexed_third_in_use(fixtures)
        url = routes.rollback_path(etype.name)
        admin = auth(orch_settings, "admin")

        # The indexer may not roll back; only an admin.
        assert (await client.post(url, json={}, headers=auth(orch_settings, "indexer"))).status_code == 403

        # v2 is no longer indexed: rollback skips it to v1.
        fixtures.client.hdel(fixtures.keys.indexed(etype.name), v2)
        response = await client.post(url, json={"reason": "bad model"}, headers=admin)
        assert response.status_code == 200, response.text
        assert (response.json()["from_version"], response.json()["to_version"]) == (v3, v1)
        assert response.json()["actor"] == "admin#1"

        # From v1 nothing earlier exists: 409 with the reason, nothing written.
        before = fixtures.snapshot()
        refused = await client.post(url, headers=admin)
        assert refused.status_code == 409
        assert refused.json()["error"] == "NoRollbackTarget"
        assert "no earlier version is published" in refused.json()["detail"]
        assert fixtures.snapshot() == before

        history = (await client.get(routes.in_use_history_path(etype.name), headers=admin)).json()
        assert history[0]["reason"] == "bad model" and history[0]["role"] == "admin"


async def test_a_rollback_from_an_expected_version_moves_once_however_often_it_is_sent(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    """A retry of a rollback whose answer was lost (a failover) gets 409 instead of rolling back twice."""
    async with app_client(orch_settings) as client:
        etype, (_v1, v2, v3) = _all_indexed_third_in_use(fixtures)
        url = routes.rollback_path(etype.name)
        admin = auth(orch_settings, "admin")
        body = {"reason": "bad model", "expected": v3}

        first = await client.post(url, json=body, headers=admin)
        assert first.status_code == 200, first.text
        assert (first.json()["from_version"], first.json()["to_version"]) == (v3, v2)
        before = fixtures.snapshot()
        retried = await client.post(url, json=body, headers=admin)
        assert retried.status_code == 409 and retried.json()["error"] == "InUseConflict"
        assert f"is {v2!r}, not {v3!r}" in retried.json()["detail"]
        assert fixtures.snapshot() == before
        history = (await client.get(routes.in_use_history_path(etype.name), headers=admin)).json()
        assert [(h["from_version"], h["to_version"]) for h in history[:1]] == [(v3, v2)]
        assert sum(1 for h in history if h["reason"] == "bad model") == 1


async def test_rollback_refuses_when_earlier_versions_are_unpublished_or_unindexed(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype, (v1, v2, v3) = _three_versions(fixtures)
        fixtures.mark_indexed(etype, v1)
        fixtures.mark_indexed(etype, v3)
        fixtures.set_in_use(etype, v3)
        fixtures.unpublish(etype, v1)  # indexed but retired
        response = await client.post(routes.rollback_path(etype.name), headers=auth(orch_settings, "admin"))
        assert response.status_code == 409
        assert response.json()["error"] == "NoRollbackTarget"
        assert v2 in response.json()["detail"] and "not indexed" in response.json()["detail"]
        assert fixtures.client.get(fixtures.keys.in_use(etype.name)) == v3.encode()


async def test_rollback_without_in_use_is_refused(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype, _ = _three_versions(fixtures)
        response = await client.post(routes.rollback_path(etype.name), headers=auth(orch_settings, "admin"))
        assert response.status_code == 409 and "no in_use version" in response.json()["detail"]


async def test_indexed_records_need_published_versions_and_protect_in_use(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings, keys: Keys
) -> None:
    async with app_client(orch_settings) as client:
        etype, (v1, v2, _v3) = _three_versions(fixtures)
        indexer = auth(orch_settings, "indexer")
        location = {
            "version": v1,
            "mode": "shadow",
            "index": "lockstep-items-x-v1",
            "vector_field": "emb",
            "version_field": "emb_version",
            "indexed_at": "2026-11-21T00:00:00Z",
            "item_count": 2,
        }

        def url(version: str) -> str:
            return routes.indexed_path(etype.name, version)

        assert (await client.put(url(v1), json=location, headers=indexer)).status_code == 204
        assert fixtures.client.hexists(keys.indexed(etype.name), v1)

        mismatch = await client.put(url(v2), json=location, headers=indexer)
        assert mismatch.status_code == 422 and mismatch.json()["detail"].startswith("version:")
        v9 = frame(9).version_id
        unpublished = await client.put(url(v9), json={**location, "version": v9}, headers=indexer)
        assert unpublished.status_code == 409 and unpublished.json()["error"] == "NotPublished"
        assert not fixtures.client.hexists(keys.indexed(etype.name), v9)

        cas = await client.put(routes.in_use_path(etype.name), json=_put(None, v1), headers=indexer)
        assert cas.status_code == 200
        in_use = await client.delete(url(v1), headers=indexer)
        assert in_use.status_code == 409 and in_use.json()["error"] == "VersionInUse"
        assert fixtures.client.hexists(keys.indexed(etype.name), v1)
        assert (await client.delete(url(v2), headers=indexer)).status_code == 204  # idempotent


async def test_two_replicas_agree_on_in_use(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype, (v1, v2, _v3) = _three_versions(fixtures)
    fixtures.mark_indexed(etype, v1)
    fixtures.mark_indexed(etype, v2)
    reader, indexer = auth(orch_settings, "reader"), auth(orch_settings, "indexer")
    async with app_client(orch_settings) as one, app_client(orch_settings) as two:
        url, cas = routes.type_path(etype.name), routes.in_use_path(etype.name)
        assert (await one.put(cas, json=_put(None, v1), headers=indexer)).status_code == 200
        assert (await two.get(url, headers=reader)).json()["in_use"] == v1
        # Replica two lost the race it did not know about: its CAS from None conflicts.
        assert (await two.put(cas, json=_put(None, v2), headers=indexer)).status_code == 409
        assert (await two.put(cas, json=_put(v1, v2), headers=indexer)).status_code == 200
        assert (await one.get(url, headers=reader)).json()["in_use"] == v2
        user = routes.user_vector_path(etype.name, "u0")
        user_one = (await one.get(user, headers=reader)).json()
        user_two = (await two.get(user, headers=reader)).json()
        assert user_one == user_two and user_one["version"] == v2
