"""Reads of immutable data through a replica that lags: what it lacks is read again from the primary."""

from __future__ import annotations

import pytest
from orchestrator_support import Fixtures, direct_type, frame, indirect_type, rows
from redis.asyncio import Redis

from contract.keys import Kind
from contract.redis_clients import login_options
from contract.settings import Settings
from orchestrator.cache import VectorCache
from orchestrator.store import Store

# A lagging replica is stood in for by another numbered database, which only a standalone server has; the
# cluster's own replica reads are tested in tests/redis_topology.
pytestmark = [pytest.mark.anyio, pytest.mark.standalone]


async def test_what_the_replica_lacks_comes_from_the_primary(fixtures: Fixtures, settings: Settings) -> None:
    etype, tags = direct_type(), indirect_type()
    fixtures.register(etype)
    fixtures.register(tags)
    users = rows("u", 40, 8, 1)
    version = fixtures.publish(etype, frame(1), {Kind.USER: users})
    tag_version = fixtures.publish(tags, frame(1), {Kind.ATTRIBUTE: rows("tag:", 5, 8, 2)})
    primary = Redis.from_url(settings.redis_endpoint, **login_options(settings))
    # The most lagging replica there is: one that has nothing yet (another database of the same server).
    lagging = Redis.from_url(settings.redis_endpoint.rsplit("/", 1)[0] + "/1", **login_options(settings))
    try:
        store = Store(primary, fixtures.keys, VectorCache(0), lagging)
        manifest = await store.manifest(etype.name, version)
        assert manifest is not None and manifest.counts.user == 40
        published = await store.published([etype.name, tags.name])
        assert [m.version for m in published[etype.name]] == [version]
        found = await store.vectors(etype.name, version, Kind.USER, ["u1", "u39", "nobody"], 8)
        assert sorted(found) == ["u1", "u39"] and found["u1"].tobytes() == users["u1"].tobytes()
        attrs = await store.attribute_vectors(tags.name, tag_version, ["tag:0", "tag:4", "tag:9"], 8)
        assert sorted(attrs) == ["tag:0", "tag:4"]
    finally:
        await primary.aclose()
        await lagging.aclose()
