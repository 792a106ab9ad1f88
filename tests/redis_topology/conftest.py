"""Topology fixtures: a throwaway Redis Cluster (3 primaries + 3 replicas) and settings that point at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_servers import NO_LOGIN, RedisServer, ThrowawayCluster

from contract.keys import Keys
from contract.redis_clients import SyncRedis, sync_client
from contract.settings import Settings


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The apps and redis.asyncio run on asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayCluster]:
    """One Redis Cluster for the session, stopped (by its own pids) afterwards."""
    started = ThrowawayCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture
def cluster_settings(settings: Settings, cluster: ThrowawayCluster) -> Settings:
    """The test's settings on the cluster topology (WAIT for 1 replica, the topology's default)."""
    return settings.model_copy(
        update={
            "redis_topology": "cluster",
            "redis_url": f"redis://{cluster.seeds[0]}",
            "redis_cluster_nodes": cluster.seeds,
            "orchestrator_poll_seconds": 0.05,
            **NO_LOGIN,
        }
    )


@pytest.fixture
def cluster_client(cluster_settings: Settings) -> Iterator[SyncRedis]:
    """A cluster client; every key of the test's prefix is deleted afterwards (on every primary)."""
    client = sync_client(cluster_settings, timeout=10)
    yield client
    for key in list(client.scan_iter(match=Keys(cluster_settings.key_prefix).all_keys_pattern(), count=1000)):
        client.delete(key)
    client.close()


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """Servers a test starts (with a config of its choosing); each stopped by its own pid afterwards."""
    started: list[RedisServer] = []
    yield started
    for server in started:
        server.stop()
