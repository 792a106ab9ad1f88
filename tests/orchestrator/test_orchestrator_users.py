"""User vectors: direct, aggregated from profiles or attributes, and consistent while in_use advances."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest
from orchestrator_support import AppFactory, Fixtures, auth, direct_type, frame, indirect_type, rows

from contract import routes
from contract.keys import Kind
from contract.settings import Settings

pytestmark = pytest.mark.anyio


async def test_direct_user_vector_comes_with_its_version(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype = direct_type()
        fixtures.register(etype)
        users = rows("u", 3, 8, 1)
        v1 = fixtures.publish(etype, frame(1), {Kind.USER: users})
        fixtures.set_in_use(etype, v1)
        reader = auth(orch_settings, "reader")
        for _ in range(2):  # second read comes from the cache
            response = await client.get(routes.user_vector_path(etype.name, "u1"), headers=reader)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["version"] == v1 and body["source"] == "direct" and body["dim"] == 8
            assert np.array_equal(np.asarray(body["vector"], dtype=np.float32), users["u1"])
        missing = await client.get(routes.user_vector_path(etype.name, "nobody"), headers=reader)
        assert missing.status_code == 404 and missing.json()["error"] == "UnknownUser"


async def test_direct_user_without_vector_falls_back_to_profile(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype = direct_type()
        fixtures.register(etype)
        items = rows("", 3, 8, 2)  # item ids "0", "1", "2"
        v1 = fixtures.publish(etype, frame(1), {Kind.USER: rows("u", 1, 8, 1), Kind.ITEM: items})
        fixtures.set_in_use(etype, v1)
        fixtures.set_profile("newcomer", {"0": 2.0, "7": 1.0})
        response = await client.get(
            routes.user_vector_path(etype.name, "newcomer"), headers=auth(orch_settings, "reader")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["source"] == "aggregate" and body["used"] == ["item:0"] and body["missing"] == ["item:7"]
        expected = items["0"] / np.linalg.norm(items["0"])
        assert np.allclose(body["vector"], expected, atol=1e-6)


async def test_indirect_user_is_aggregated_from_profile(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype = indirect_type()
        fixtures.register(etype)
        attrs = {"item:1": np.ones(8, np.float32), "item:2": np.arange(8, dtype=np.float32)}
        v1 = fixtures.publish(etype, frame(1), {Kind.ATTRIBUTE: attrs})
        fixtures.set_in_use(etype, v1)
        fixtures.set_profile("reader-7", {"1": 1.0, "2": 0.5, "3": 4.0})
        response = await client.get(
            routes.user_vector_path(etype.name, "reader-7"), headers=auth(orch_settings, "reader")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        raw = attrs["item:1"] + 0.5 * attrs["item:2"]
        assert np.allclose(body["vector"], raw / np.linalg.norm(raw), atol=1e-6)
        assert body["used"] == ["item:1", "item:2"] and body["missing"] == ["item:3"]
        assert body["version"] == v1

        unknown = await client.get(
            routes.user_vector_path(etype.name, "ghost"), headers=auth(orch_settings, "reader")
        )
        assert unknown.status_code == 404 and unknown.json()["error"] == "UnknownUser"


async def test_aggregate_explicit_attributes(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype = indirect_type()
        fixtures.register(etype)
        attrs = {"tag:fantasy": np.full(8, 2.0, np.float32), "tag:crime": np.eye(8, dtype=np.float32)[0]}
        v1 = fixtures.publish(etype, frame(1), {Kind.ATTRIBUTE: attrs})
        fixtures.set_in_use(etype, v1)
        url = routes.aggregate_path(etype.name)
        reader = auth(orch_settings, "reader")
        body = {
            "attributes": [
                {"id": "tag:fantasy", "weight": 0.5},
                {"id": "tag:crime", "weight": 3},
                {"id": "tag:missing"},
            ],
            "normalize": False,
        }
        response = await client.post(url, json=body, headers=reader)
        assert response.status_code == 200, response.text
        result = response.json()
        assert np.allclose(result["vector"], 0.5 * attrs["tag:fantasy"] + 3 * attrs["tag:crime"])
        assert result["used"] == ["tag:fantasy", "tag:crime"] and result["missing"] == ["tag:missing"]

        none = await client.post(url, json={"attributes": [{"id": "tag:nothing"}]}, headers=reader)
        assert none.status_code == 422 and none.json()["error"] == "NoAttributesFound"
        assert none.json()["detail"].startswith("attributes:")

        fixtures.set_profile("p1", {"9": 1.0})
        profile_none = await client.post(url, json={"user_id": "p1"}, headers=reader)
        assert profile_none.status_code == 422 and profile_none.json()["detail"].startswith("user_id:")


async def test_concurrent_reads_while_in_use_advances_return_matching_pairs(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        etype = direct_type()
        fixtures.register(etype)
        stored: dict[str, dict[str, np.ndarray]] = {}
        versions = []
        for month in range(1, 6):
            users = rows("u", 20, 8, 100 + month)
            version = fixtures.publish(etype, frame(month), {Kind.USER: users})
            fixtures.mark_indexed(etype, version)
            stored[version] = users
            versions.append(version)
        fixtures.set_in_use(etype, versions[0])
        reader, indexer = auth(orch_settings, "reader"), auth(orch_settings, "indexer")

        async def advance(previous: str, target: str) -> None:
            response = await client.put(
                routes.in_use_path(etype.name),
                json={"expected": previous, "version": target},
                headers=indexer,
            )
            assert response.status_code == 200, response.text

        async def read(n: int) -> tuple[str, str, list[float]]:
            user = f"u{n % 20}"
            response = await client.get(routes.user_vector_path(etype.name, user), headers=reader)
            assert response.status_code == 200, response.text
            body = response.json()
            return user, body["version"], body["vector"]

        # Five waves of 40 concurrent reads; during each of the first four, in_use advances one step: it is
        # sent after the wave's first 20 reads (tasks start in the order they are created), and the other 20
        # are sent once it has landed.
        pairs: list[tuple[str, str, list[float]]] = []
        steps = list(itertools.pairwise(versions))
        for wave in range(5):
            reads = [asyncio.create_task(read(n)) for n in range(20)]
            if wave < len(steps):
                await advance(*steps[wave])
            reads += [asyncio.create_task(read(n)) for n in range(20, 40)]
            pairs.extend(await asyncio.gather(*reads))
        assert len(pairs) == 200
        seen_versions = set()
        for user, version, vector in pairs:
            got = np.asarray(vector, dtype=np.float32)
            assert np.array_equal(got, stored[version][user]), (user, version)
            seen_versions.add(version)
        assert len(seen_versions) >= 4  # the reads really overlapped the advance
