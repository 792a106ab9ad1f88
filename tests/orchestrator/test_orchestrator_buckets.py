"""Vectors spread over many bucket hashes: batches, aggregates and lookups find every one of them."""

from __future__ import annotations

import numpy as np
import pytest
from orchestrator_support import (
    AppFactory,
    Fixtures,
    auth,
    direct_type,
    frame,
    indirect_type,
    polled_once,
    rows,
)

from contract import routes
from contract.keys import Kind
from contract.settings import Settings
from contract.vectors import buckets_for, by_bucket, from_base64
from contract.wire import ItemsBatchResponse

pytestmark = pytest.mark.anyio


async def test_an_items_batch_spanning_many_buckets_keeps_order_and_lists_missing(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype = indirect_type()
    fixtures.register(etype)
    items = rows("", 700, 8, 3)
    assert len(by_bucket(items, buckets_for(700))) == 11  # the batch touches every bucket
    version = fixtures.publish(etype, frame(1), {Kind.ITEM: items})
    wanted = [str(i) for i in range(699, -1, -2)] + ["cold"]
    async with app_client(orch_settings) as client:
        for _ in range(2):  # the second time from the cache
            response = await client.post(
                routes.items_batch_path(etype.name),
                json={"version": version, "item_ids": wanted},
                headers=auth(orch_settings, "indexer"),
            )
            assert response.status_code == 200, response.text
            batch = ItemsBatchResponse.model_validate(response.json())
            assert batch.ids == wanted[:-1] and batch.missing == ["cold"]
            assert np.array_equal(from_base64(batch.vectors, 8), np.stack([items[i] for i in wanted[:-1]]))


async def test_aggregates_read_attribute_and_item_buckets_together(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype = indirect_type()
    fixtures.register(etype)
    tags = rows("tag:t", 300, 8, 4)
    items = rows("", 300, 8, 5)
    version = fixtures.publish(etype, frame(1), {Kind.ITEM: items, Kind.ATTRIBUTE: tags})
    fixtures.set_in_use(etype, version)
    attributes = [{"id": f"tag:t{i}", "weight": 1.0} for i in range(0, 300, 3)]
    attributes += [{"id": f"item:{i}", "weight": 2.0} for i in range(1, 300, 7)]  # items' own vectors
    attributes += [{"id": "tag:nope", "weight": 1.0}]
    async with app_client(orch_settings) as client:
        response = await client.post(
            routes.aggregate_path(etype.name),
            json={"attributes": attributes, "normalize": False},
            headers=auth(orch_settings, "reader"),
        )
        assert response.status_code == 200, response.text
        body = response.json()
    expected = sum(tags[f"tag:t{i}"] for i in range(0, 300, 3)) + sum(
        2 * items[str(i)] for i in range(1, 300, 7)
    )
    assert body["missing"] == ["tag:nope"] and len(body["used"]) == len(attributes) - 1
    assert np.allclose(np.asarray(body["vector"], dtype=np.float32), expected, atol=1e-4)


async def test_a_user_of_a_version_published_after_the_last_poll_is_found(
    app_client: AppFactory, fixtures: Fixtures, settings: Settings
) -> None:
    slow = settings.model_copy(update={"orchestrator_poll_seconds": 3600})
    etype = direct_type()
    fixtures.register(etype)
    async with app_client(slow) as client:
        await polled_once(client, slow)
        # Published and put in use after the app's only poll: its bucket count comes from the manifest.
        users = rows("u", 500, 8, 6)
        version = fixtures.publish(etype, frame(1), {Kind.USER: users})
        fixtures.set_in_use(etype, version)
        response = await client.get(routes.user_vector_path(etype.name, "u321"), headers=auth(slow, "reader"))
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version
        assert np.array_equal(np.asarray(response.json()["vector"], dtype=np.float32), users["u321"])
