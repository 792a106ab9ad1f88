"""Writes through the client: indexed records, in_use compare-and-set, history and rollback."""

from __future__ import annotations

import pytest
from client_support import Connect, Published, location

from contract.settings import Settings
from orchestrator_client.errors import (
    InUseConflict,
    NoRollbackTarget,
    NotIndexed,
    VersionInUse,
)

pytestmark = pytest.mark.anyio


async def test_in_use_moves_by_compare_and_set_and_rolls_back(
    app_client: Connect, settings: Settings, published: Published
) -> None:
    name = published.etype.name
    first, second = published.versions
    async with app_client(settings, settings.admin_keys[0].get_secret_value()) as client:
        with pytest.raises(NotIndexed):
            await client.set_in_use(name, None, first, "not indexed yet")
        for version in (first, second):
            await client.record_indexed(name, location(version))
        assert (await client.set_in_use(name, None, first, "first")).to_version == first
        with pytest.raises(InUseConflict) as stale:
            await client.set_in_use(name, None, second, "stale expectation")
        assert stale.value.status == 409 and "expected" in stale.value.detail
        change = await client.set_in_use(name, first, second, "second")
        assert (change.from_version, change.to_version, change.reason) == (first, second, "second")
        with pytest.raises(VersionInUse):
            await client.forget_indexed(name, second)
        back = await client.rollback(name, "bad version")
        assert (back.from_version, back.to_version) == (second, first)
        history = await client.in_use_history(name, limit=2)
        assert [(c.from_version, c.to_version) for c in history] == [(second, first), (first, second)]
        await client.forget_indexed(name, second)
        await client.forget_indexed(name, second)  # idempotent
        await client.forget_indexed("gone-type", second)  # a type that is gone has nothing to forget
        assert [loc.version for loc in (await client.type_info(name)).indexed] == [first]
        with pytest.raises(NoRollbackTarget):
            await client.rollback(name)
