"""Lockstep through Sentinel: the primary by name, writes acknowledged by its replica, replica reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_servers import NO_LOGIN, ThrowawaySentinel
from topology_support import TYPE, auth, location, orchestrator, publish_versions

from contract import routes
from contract.keys import Keys
from contract.redis_setup import checked_client
from contract.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[ThrowawaySentinel]:
    """A primary, a replica and a Sentinel, stopped (by their own pids) afterwards."""
    started = ThrowawaySentinel(tmp_path)
    try:
        yield started.start()
    finally:
        started.stop()


async def test_publish_and_in_use_through_sentinel(settings: Settings, sentinel: ThrowawaySentinel) -> None:
    own = settings.model_copy(
        update={
            "redis_topology": "sentinel",
            "redis_sentinel_hosts": sentinel.hosts,
            "redis_sentinel_master": sentinel.name,
            "redis_replica_reads": True,
            **NO_LOGIN,
        }
    )
    client = checked_client(own)  # checks the primary and the replica the Sentinel names
    first, second = publish_versions(client, own, 100)  # each commit waits for the replica
    indexer = auth(own, "indexer")
    async with orchestrator(own) as api:
        for version in (first, second):
            put = await api.put(
                routes.indexed_path(TYPE.name, version), json=location(version), headers=indexer
            )
            assert put.status_code == 204, put.text
        body = {"expected": None, "version": second, "reason": "r"}
        moved = await api.put(routes.in_use_path(TYPE.name), json=body, headers=indexer)
        assert moved.status_code == 200, moved.text
        user = await api.get(routes.user_vector_path(TYPE.name, "u42"), headers=auth(own, "reader"))
        assert user.status_code == 200 and user.json()["version"] == second, user.text
    replica = sentinel.replica.client()
    assert replica.get(Keys(own.key_prefix).in_use(TYPE.name)) == second.encode()  # acknowledged: it is there
    replica.close()
    client.close()
