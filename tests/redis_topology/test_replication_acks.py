"""A write too few replicas acknowledged is reported as a failure, never as done; a retry confirms it.

Without the required replica (the shared standalone Redis has none; a cluster replica stopped with
SIGSTOP), WAIT answers fewer acknowledgements than required: publishing raises, the orchestrator answers
503 with Retry-After naming the replication, and the caller's retry succeeds once replicas answer.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from redis_servers import ThrowawayCluster, eventually
from topology_support import TYPE, auth, frame, location, orchestrator, publish_versions, vector_set

from contract import routes
from contract.keys import Keys
from contract.redis_clients import SyncRedis, sync_client
from contract.replication import Replication
from contract.settings import Settings
from training.publish import PublishError, publish, read_manifest
from training.registry import register_type

pytestmark = pytest.mark.anyio

NAMED = "replicas acknowledged the write within 50 ms (LOCKSTEP_REDIS_WAIT_REPLICAS"


@pytest.fixture
def unreplicated(settings: Settings) -> Settings:
    """The shared standalone Redis (no replicas) with one replica required."""
    return settings.model_copy(update={"redis_wait_replicas": 1, "redis_wait_timeout_ms": 50})


def test_publishing_without_the_replica_raises_and_a_rerun_confirms(
    redis_client: SyncRedis, unreplicated: Settings
) -> None:
    keys = Keys(unreplicated.key_prefix)
    register_type(redis_client, keys, TYPE)
    users, items = vector_set("u", 300, 1), vector_set("", 20, 2)
    with pytest.raises(PublishError, match=re.escape("0 of 1 " + NAMED)) as vectors_unconfirmed:
        publish(
            redis_client,
            keys,
            TYPE,
            frame(1),
            users=users,
            items=items,
            replication=Replication.of(unreplicated),
        )
    assert "stays unpublished" in str(vectors_unconfirmed.value)
    assert read_manifest(redis_client, keys, TYPE.name, frame(1).version_id) is None

    # Published where nothing is required; the same publish asking for a replica is not confirmed...
    done = publish(redis_client, keys, TYPE, frame(1), users=users, items=items)
    with pytest.raises(
        PublishError, match="is published but not confirmed: .*" + re.escape("0 of 1 " + NAMED)
    ):
        publish(
            redis_client,
            keys,
            TYPE,
            frame(1),
            users=users,
            items=items,
            replication=Replication.of(unreplicated),
        )
    # ...and is a no-op once the requirement can be met.
    again = publish(redis_client, keys, TYPE, frame(1), users=users, items=items)
    assert not again.created and again.manifest == done.manifest


async def test_an_unacknowledged_in_use_change_is_a_503_and_its_retry_succeeds(
    redis_client: SyncRedis, settings: Settings, unreplicated: Settings
) -> None:
    (version,) = publish_versions(redis_client, settings, 50, months=1)
    keys = Keys(settings.key_prefix)
    indexer = auth(settings, "indexer")
    async with orchestrator(unreplicated) as client:
        recorded = await client.put(
            routes.indexed_path(TYPE.name, version), json=location(version), headers=indexer
        )
        assert recorded.status_code == 503 and recorded.headers["Retry-After"] == "1"
        body = {"expected": None, "version": version, "reason": "first"}
        refused = await client.put(routes.in_use_path(TYPE.name), json=body, headers=indexer)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.json()["error"] == "RedisUnavailable" and NAMED in refused.json()["detail"]
    # The primary applied both; only the acknowledgement was missing. The indexer's retry succeeds.
    assert redis_client.get(keys.in_use(TYPE.name)) == version.encode()
    async with orchestrator(settings) as client:
        retried = await client.put(routes.in_use_path(TYPE.name), json=body, headers=indexer)
        assert retried.status_code == 200 and retried.json()["from_version"] == version


def _replica_of(cluster: ThrowawayCluster, client: SyncRedis, key: str) -> int:
    """The pid of the replica of the primary that owns `key`."""
    primary = client.get_node_from_key(key).name  # type: ignore[no-untyped-call]
    for node in cluster.nodes:
        info = node.client().info("replication")
        if info["role"] == "slave" and f"{info['master_host']}:{info['master_port']}" == primary:
            assert node.process is not None
            return node.process.pid
    raise AssertionError(f"no replica of {primary}")


async def test_on_the_cluster_a_stopped_replica_fails_the_change_until_it_answers_again(
    cluster_client: SyncRedis, cluster_settings: Settings, cluster: ThrowawayCluster
) -> None:
    first, second = publish_versions(cluster_client, cluster_settings, 200)
    keys = Keys(cluster_settings.key_prefix)
    impatient = cluster_settings.model_copy(update={"redis_wait_timeout_ms": 200})
    indexer = auth(impatient, "indexer")
    cas = routes.in_use_path(TYPE.name)
    body = {"expected": first, "version": second, "reason": "advance"}
    async with orchestrator(impatient) as client:
        for version in (first, second):
            put = await client.put(
                routes.indexed_path(TYPE.name, version), json=location(version), headers=indexer
            )
            assert put.status_code == 204, put.text
        moved = await client.put(
            cas, json={"expected": None, "version": first, "reason": "r"}, headers=indexer
        )
        assert moved.status_code == 200, moved.text

        replica = _replica_of(cluster, cluster_client, keys.in_use(TYPE.name))
        os.kill(replica, signal.SIGSTOP)
        try:
            refused = await client.put(cas, json=body, headers=indexer)
            assert refused.status_code == 503 and "0 of 1 replicas" in refused.json()["detail"], refused.text
        finally:
            os.kill(replica, signal.SIGCONT)
        eventually(cluster.healthy, "the replica is back in sync")
        retried = await client.put(cas, json=body, headers=indexer)
        assert retried.status_code == 200 and retried.json()["from_version"] == second, retried.text
    fresh = sync_client(cluster_settings)
    assert fresh.get(keys.in_use(TYPE.name)) == second.encode()
    fresh.close()
