"""items:batch: direct vectors, aggregation from item attributes, missing ids, the compact encoding."""

from __future__ import annotations

import numpy as np
import pytest
from orchestrator_support import AppFactory, Fixtures, auth, frame, indirect_type, rows

from contract import routes
from contract.keys import Kind
from contract.settings import Settings
from contract.vectors import from_base64
from contract.wire import ItemsBatchResponse

pytestmark = pytest.mark.anyio


async def test_items_batch_direct_aggregated_and_missing(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype = indirect_type()
    fixtures.register(etype)
    items = rows("", 5, 8, 3)  # ids "0".."4"
    tags = {"tag:a": np.ones(8, np.float32), "tag:b": np.arange(8, dtype=np.float32)}
    v1 = fixtures.publish(etype, frame(1), {Kind.ITEM: items, Kind.ATTRIBUTE: tags})
    v2 = fixtures.publish(etype, frame(2), {Kind.ITEM: rows("", 2, 8, 4)})
    body = {
        "version": v1,
        "item_ids": ["4", "cold-1", "0", "cold-2", "cold-3"],
        "attributes": {
            "cold-1": [{"id": "tag:a", "weight": 2}, {"id": "tag:b", "weight": 1}],
            "cold-3": [{"id": "tag:unknown"}],
        },
    }
    async with app_client(orch_settings) as client:
        url = routes.items_batch_path(etype.name)
        response = await client.post(url, json=body, headers=auth(orch_settings, "indexer"))
        assert response.status_code == 200, response.text
        batch = ItemsBatchResponse.model_validate(response.json())
        assert batch.version == v1 and batch.dim == 8
        assert batch.ids == ["4", "cold-1", "0"]
        assert batch.aggregated == ["cold-1"]
        assert batch.missing == ["cold-2", "cold-3"]
        matrix = from_base64(batch.vectors, batch.dim)
        assert np.array_equal(matrix[0], items["4"]) and np.array_equal(matrix[2], items["0"])
        assert np.allclose(matrix[1], 2 * tags["tag:a"] + tags["tag:b"])

        # Any published version, not only in_use (none is set here); v2 lacks item "4".
        other = await client.post(
            url, json={"version": v2, "item_ids": ["0", "4"]}, headers=auth(orch_settings, "reader")
        )
        assert other.status_code == 200
        assert other.json()["ids"] == ["0"] and other.json()["missing"] == ["4"]


async def test_items_batch_of_an_unpublished_version_is_404(
    app_client: AppFactory, fixtures: Fixtures, orch_settings: Settings
) -> None:
    etype = indirect_type()
    fixtures.register(etype)
    fixtures.publish(etype, frame(1), {Kind.ITEM: rows("", 2, 8, 3)})
    half = frame(2)
    fixtures.write_vectors_without_manifest(etype, half, {Kind.ITEM: rows("", 2, 8, 5)})
    async with app_client(orch_settings) as client:
        response = await client.post(
            routes.items_batch_path(etype.name),
            json={"version": half.version_id, "item_ids": ["0"]},
            headers=auth(orch_settings, "indexer"),
        )
        assert response.status_code == 404
        assert response.json()["error"] == "UnknownVersion" and response.json()["detail"].startswith(
            "version:"
        )
