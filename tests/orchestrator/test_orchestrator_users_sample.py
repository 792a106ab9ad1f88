"""users:sample: random user vectors of any published version, for the indexer's recall gate."""

from __future__ import annotations

import numpy as np
import pytest
from orchestrator_support import AppFactory, Fixtures, auth, direct_type, frame, indirect_type, rows

from contract import routes
from contract.keys import Kind
from contract.settings import Settings
from contract.vectors import BUCKET_TARGET, bucket_of, buckets_for, from_base64
from contract.wire import UsersSample

pytestmark = pytest.mark.anyio

USERS = 20 * BUCKET_TARGET  # spread over many buckets


async def test_a_sample_is_drawn_from_the_asked_version_across_its_buckets(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype = direct_type()
    fixtures.register(etype)
    users = rows("u", USERS, 8, 1)
    v1 = fixtures.publish(etype, frame(1), {Kind.USER: users, Kind.ITEM: rows("i", 3, 8, 2)})
    # A newer version whose users' vectors all differ: none of them may be answered for v1.
    fixtures.publish(etype, frame(2), {Kind.USER: rows("u", USERS, 8, 3), Kind.ITEM: rows("i", 3, 8, 4)})
    async with app_client(orch_settings) as client:
        draws = []
        for _ in range(2):
            response = await client.get(
                routes.users_sample_path(etype.name),
                params={"version": v1, "count": 50},
                headers=auth(orch_settings, "indexer"),
            )
            assert response.status_code == 200, response.text
            draws.append(UsersSample.model_validate(response.json()))
    for sample in draws:
        assert sample.version == v1 and sample.dim == 8
        assert len(sample.ids) == len(set(sample.ids)) == 50
        matrix = from_base64(sample.vectors, sample.dim)
        for user_id, row in zip(sample.ids, matrix, strict=True):
            assert np.array_equal(row, users[user_id]), user_id
        # Spread: not the contents of one or two bucket hashes.
        assert len({bucket_of(u, buckets_for(USERS)) for u in sample.ids}) >= 10
    assert set(draws[0].ids) != set(draws[1].ids), "two draws of 50 of 1,280 users were the same set"


async def test_a_sample_holds_what_the_version_has(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    few = direct_type("few-d8")
    tags = indirect_type()
    for etype in (few, tags):
        fixtures.register(etype)
    users = rows("u", 5, 8, 1)
    v_few = fixtures.publish(few, frame(1), {Kind.USER: users, Kind.ITEM: rows("i", 3, 8, 2)})
    v_tags = fixtures.publish(tags, frame(1), {Kind.ITEM: rows("i", 3, 8, 2), Kind.ATTRIBUTE: {}})
    async with app_client(orch_settings) as client:
        small = await client.get(
            routes.users_sample_path(few.name),
            params={"version": v_few, "count": 100},
            headers=auth(orch_settings, "admin"),
        )
        none = await client.get(
            routes.users_sample_path(tags.name),
            params={"version": v_tags},
            headers=auth(orch_settings, "indexer"),
        )
    assert small.status_code == 200 and sorted(small.json()["ids"]) == sorted(users)
    assert none.status_code == 200 and none.json()["ids"] == [] and none.json()["vectors"] == ""


async def test_a_sample_needs_an_indexer_key(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype = direct_type()
    fixtures.register(etype)
    v1 = fixtures.publish(etype, frame(1), {Kind.USER: rows("u", 5, 8, 1), Kind.ITEM: rows("i", 3, 8, 2)})
    path = routes.users_sample_path(etype.name)
    async with app_client(orch_settings) as client:
        anonymous = await client.get(path, params={"version": v1})
        reader = await client.get(path, params={"version": v1}, headers=auth(orch_settings, "reader"))
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "Unauthorized"
    assert reader.status_code == 403 and reader.json()["error"] == "Forbidden"
