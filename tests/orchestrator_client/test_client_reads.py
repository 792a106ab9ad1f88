"""Reads through the client against the real orchestrator: wire models back, item vectors decoded."""

from __future__ import annotations

import numpy as np
import pytest
from client_support import ITEMS, Connect, Published, location

from contract.settings import Settings
from contract.wire import AggregateRequest, TypeInfo, UserVector, WeightedAttribute

pytestmark = pytest.mark.anyio


async def test_types_come_back_as_type_info(
    app_client: Connect, settings: Settings, published: Published
) -> None:
    first, second = published.versions
    async with app_client(settings, settings.indexer_keys[0].get_secret_value()) as client:
        await client.record_indexed(published.etype.name, location(first))
        listed = await client.list_types()
        one = await client.type_info(published.etype.name)
        fresh = await client.refresh_type(published.etype.name)
    assert [t.type for t in listed] == [published.etype]
    assert isinstance(one, TypeInfo)
    assert one.latest == second and one.in_use is None
    assert [v.version for v in one.published] == [first, second]
    assert one.indexed == [location(first).model_copy(update={"indexed_at": one.indexed[0].indexed_at})]
    assert fresh.latest == second


async def test_user_vectors_carry_their_version(
    app_client: Connect, settings: Settings, published: Published
) -> None:
    first, _ = published.versions
    async with app_client(settings, settings.indexer_keys[0].get_secret_value()) as client:
        await client.record_indexed(published.etype.name, location(first))
        await client.set_in_use(published.etype.name, None, first, "test")
        direct = await client.user_vector(published.etype.name, "u1")
        attributes = [WeightedAttribute(id="item:7", weight=2.0), WeightedAttribute(id="item:nope")]
        summed = await client.aggregate(
            published.etype.name, AggregateRequest(attributes=attributes, normalize=False)
        )
    assert isinstance(direct, UserVector)
    assert (direct.version, direct.source, direct.dim) == (first, "direct", 8)
    np.testing.assert_allclose(direct.vector, published.users["u1"], rtol=1e-6)
    assert (summed.version, summed.source, summed.used, summed.missing) == (
        first,
        "aggregate",
        ["item:7"],
        ["item:nope"],
    )
    np.testing.assert_allclose(summed.vector, 2.0 * published.items["7"], rtol=1e-6)


async def test_item_vectors_are_batched_and_decoded(
    app_client: Connect, settings: Settings, published: Published
) -> None:
    _, second = published.versions
    wanted = [str(i) for i in range(ITEMS)] + ["ghost"]
    extra = {"0": [WeightedAttribute(id="item:1"), WeightedAttribute(id="item:2")]}
    async with app_client(settings, settings.reader_keys[0].get_secret_value()) as client:
        found = await client.item_vectors(published.etype.name, second, wanted, extra)
        plain = await client.item_vectors(published.etype.name, second, ["0", "1"])
        none = await client.item_vectors(published.etype.name, second, [])
    assert found.version == second and found.dim == 8
    assert found.ids == tuple(str(i) for i in range(ITEMS))  # "0" aggregated from items 1 and 2
    assert found.aggregated == ("0",) and found.missing == ("ghost",)
    assert found.matrix.shape == (ITEMS, 8) and found.matrix.dtype == np.float32
    np.testing.assert_allclose(found.matrix[0], published.items["1"] + published.items["2"], rtol=1e-6)
    np.testing.assert_array_equal(found.matrix[1:], np.stack([published.items[i] for i in found.ids[1:]]))
    assert (plain.ids, plain.missing) == (("1",), ("0",))
    assert none.ids == () and none.matrix.shape[0] == 0
