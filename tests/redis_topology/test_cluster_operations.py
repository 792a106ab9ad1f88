"""Lockstep on a real Redis Cluster: publish, reads, compare-and-set, rollback, indexed records, retention.

Every atomic operation is a single-slot script or read, so none of them meets CROSSSLOT; a version's vector
buckets land on several primaries; every write here waits for one replica (the cluster's default).
"""

from __future__ import annotations

import pytest
from redis_servers import ThrowawayCluster
from topology_support import TYPE, auth, location, orchestrator, publish_versions

from contract import routes
from contract.keys import Keys, Kind
from contract.redis_clients import SyncRedis
from contract.settings import Settings
from training import leftovers
from training.publish import read_manifest
from training.retention import delete_version, gc, list_versions

pytestmark = pytest.mark.anyio

USERS = 3_000  # 47 user buckets in 3 groups: several slots


def _slot(cluster_client: SyncRedis, key: str) -> int:
    return int(cluster_client.execute_command("CLUSTER", "KEYSLOT", key))  # type: ignore[no-untyped-call]


def test_a_published_version_spreads_its_buckets_and_keeps_its_control_keys_on_one_slot(
    cluster_client: SyncRedis, cluster_settings: Settings
) -> None:
    keys = Keys(cluster_settings.key_prefix)
    first, second = publish_versions(cluster_client, cluster_settings, USERS)
    manifest = read_manifest(cluster_client, keys, TYPE.name, second)
    assert manifest is not None and manifest.counts.user == USERS and manifest.buckets.user == 47
    assert [m.version for m in list_versions(cluster_client, keys, TYPE.name)] == [first, second]

    buckets = list(leftovers.bucket_names(keys, TYPE.name, second, manifest.buckets))
    assert sum(int(cluster_client.hlen(name)) for name in buckets) == USERS + 50
    # The server's own CLUSTER KEYSLOT: the user buckets' three groups sit on three slots (and primaries).
    user_slots = {_slot(cluster_client, keys.vectors(TYPE.name, second, Kind.USER, b)) for b in range(47)}
    assert len(user_slots) == 3
    owners = {cluster_client.get_node_from_key(name).name for name in buckets}  # type: ignore[no-untyped-call]
    assert len(owners) >= 2
    control = [
        keys.manifest(TYPE.name, first),
        keys.manifest(TYPE.name, second),
        keys.published(TYPE.name),
        keys.publish_seq(TYPE.name),
        keys.vectors_pending(TYPE.name),
        keys.in_use(TYPE.name),
        keys.audit(TYPE.name),
        keys.indexed(TYPE.name),
        keys.publish_lock(TYPE.name, second),
    ]
    assert len({_slot(cluster_client, key) for key in control}) == 1


async def test_the_orchestrator_reads_moves_in_use_and_rolls_back_on_the_cluster(
    cluster_client: SyncRedis, cluster_settings: Settings
) -> None:
    first, second = publish_versions(cluster_client, cluster_settings, USERS)
    reader, indexer, admin = (auth(cluster_settings, role) for role in ("reader", "indexer", "admin"))
    async with orchestrator(cluster_settings) as client:
        assert (await client.get("/readyz")).status_code == 200
        info = (await client.get(routes.type_path(TYPE.name), headers=reader)).json()
        assert info["latest"] == second and info["in_use"] is None

        for version in (first, second):  # record_indexed: one script on the type's slot
            recorded = await client.put(
                routes.indexed_path(TYPE.name, version), json=location(version), headers=indexer
            )
            assert recorded.status_code == 204, recorded.text
        cas = routes.in_use_path(TYPE.name)
        moved = await client.put(
            cas, json={"expected": None, "version": first, "reason": "r"}, headers=indexer
        )
        assert moved.status_code == 200, moved.text
        moved = await client.put(
            cas, json={"expected": first, "version": second, "reason": "r"}, headers=indexer
        )
        assert moved.status_code == 200, moved.text
        # Promotion is idempotent: the same move again (a retry after a lost reply) succeeds, no audit entry.
        again = await client.put(
            cas, json={"expected": first, "version": second, "reason": "r"}, headers=indexer
        )
        assert again.status_code == 200 and again.json()["from_version"] == second

        user = await client.get(routes.user_vector_path(TYPE.name, "u2999"), headers=reader)
        assert user.status_code == 200 and user.json()["version"] == second
        batch = await client.post(
            routes.items_batch_path(TYPE.name),
            json={"version": second, "item_ids": ["0", "49"]},
            headers=reader,
        )
        assert batch.status_code == 200, batch.text
        types = await client.get(routes.types_path(), headers=reader)  # Store.states: one script per type
        assert [(t["in_use"], len(t["indexed"])) for t in types.json()] == [(second, 2)]

        back = await client.post(routes.rollback_path(TYPE.name), json={"reason": "bad"}, headers=admin)
        assert back.status_code == 200, back.text
        assert (back.json()["from_version"], back.json()["to_version"]) == (second, first)
        history = await client.get(routes.in_use_history_path(TYPE.name), headers=reader)
        assert [(e["from_version"], e["to_version"]) for e in history.json()] == [
            (second, first),
            (first, second),
            (None, first),
        ]
        dropped = await client.delete(routes.indexed_path(TYPE.name, second), headers=indexer)
        assert dropped.status_code == 204


def test_retention_deletes_and_collects_on_the_cluster(
    cluster_client: SyncRedis, cluster_settings: Settings
) -> None:
    keys = Keys(cluster_settings.key_prefix)
    versions = publish_versions(cluster_client, cluster_settings, USERS, months=3)
    manifest = read_manifest(cluster_client, keys, TYPE.name, versions[0])
    assert manifest is not None
    cluster_client.set(keys.in_use(TYPE.name), versions[2])

    assert delete_version(cluster_client, keys, TYPE.name, versions[0]) == manifest
    names = list(leftovers.bucket_names(keys, TYPE.name, versions[0], manifest.buckets))
    assert cluster_client.exists(*names) == 0  # a cluster client splits EXISTS by slot
    plan = gc(cluster_client, keys, keep=1)[0]
    assert plan.delete == (versions[1],)
    assert [m.version for m in list_versions(cluster_client, keys, TYPE.name)] == [versions[2]]
    assert not cluster_client.hgetall(keys.vectors_pending(TYPE.name))


def _replica_reads(cluster: ThrowawayCluster) -> int:
    """Vector and manifest reads the replicas have answered so far."""
    total = 0
    for node in cluster.nodes:
        client = node.client()
        if client.info("replication")["role"] == "slave":
            stats = client.info("commandstats")
            total += sum(
                int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("hget", "hmget", "mget")
            )
        client.close()
    return total


async def test_replica_reads_serve_published_vectors(
    cluster_client: SyncRedis, cluster_settings: Settings, cluster: ThrowawayCluster
) -> None:
    keys = Keys(cluster_settings.key_prefix)
    (version,) = publish_versions(cluster_client, cluster_settings, 200, months=1)
    cluster_client.set(keys.in_use(TYPE.name), version)
    own = cluster_settings.model_copy(update={"redis_replica_reads": True})
    before = _replica_reads(cluster)
    async with orchestrator(own) as client:
        for user_id in ("u7", "u150"):
            user = await client.get(routes.user_vector_path(TYPE.name, user_id), headers=auth(own, "reader"))
            assert user.status_code == 200 and user.json()["version"] == version, user.text
        batch = await client.post(
            routes.items_batch_path(TYPE.name),
            json={"version": version, "item_ids": [str(i) for i in range(50)]},
            headers=auth(own, "reader"),
        )
        assert batch.status_code == 200 and len(batch.json()["ids"]) == 50, batch.text
    assert _replica_reads(cluster) > before
