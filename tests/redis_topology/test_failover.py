"""A Redis Cluster primary SIGKILLed while Lockstep publishes, moves in_use and serves: nothing acknowledged
is lost, nothing unacknowledged is reported as done, answers are 200s, refusals or 503 + Retry-After (never
a 500), and service comes back once the replica has taken over. The figures printed are the recoveries
measured (run with `-s` to see them).

The cluster (3 primaries, a replica each, cluster-node-timeout 2 s) is this module's own; each test leaves
it with every node running and every primary replicated. A killed primary is started again only after its
replica took over (it then rejoins as a replica), as a supervisor would: writes wait for one replica, so
until then those on its slots are refused with 503.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from failover_support import (
    Kill,
    Timeline,
    expected_vectors,
    restore,
    stored_vectors,
    until,
)
from redis_servers import ThrowawayCluster, eventually
from topology_support import TYPE, auth, frame, location, orchestrator_http, vector_set

from contract import routes
from contract.keys import Keys, Kind
from contract.redis_clients import SyncRedis, sync_client
from contract.replication import Replication
from contract.settings import Settings
from contract.vectors import buckets_for
from training.publish import PublishError, PublishResult, VectorSet, publish, read_manifest
from training.registry import register_type
from training.retention import list_versions

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def failover_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayCluster]:
    """This module's own cluster: its tests kill and restart its nodes."""
    started = ThrowawayCluster(tmp_path_factory.mktemp("failover"))
    try:
        yield started.start()
    finally:
        started.stop()


@dataclass
class Rig:
    """The cluster, settings pointing at it, and a client of them."""

    cluster: ThrowawayCluster
    settings: Settings
    client: SyncRedis

    @property
    def keys(self) -> Keys:
        """The test's key schema."""
        return Keys(self.settings.key_prefix)

    def owner(self, key: str) -> str:
        """host:port of the primary serving `key` now (a fresh look at the slot map)."""
        fresh = sync_client(self.settings, timeout=10)
        try:
            return str(fresh.get_node_from_key(key).name)  # type: ignore[union-attr]
        finally:
            fresh.close()

    def fresh(self) -> SyncRedis:
        """A new client: what a process started after the failover would see."""
        return sync_client(self.settings, timeout=10)


@pytest.fixture
def rig(settings: Settings, failover_cluster: ThrowawayCluster) -> Iterator[Rig]:
    """The cluster at full strength before and after the test; the test's keys deleted afterwards."""
    restore(failover_cluster)
    own = settings.model_copy(
        update={
            "redis_topology": "cluster",
            "redis_url": f"redis://{failover_cluster.seeds[0]}",
            "redis_cluster_nodes": failover_cluster.seeds,
        }
    )
    client = sync_client(own, timeout=10)
    yield Rig(failover_cluster, own, client)
    client.close()
    restore(failover_cluster)
    cleaner = sync_client(own, timeout=10)
    for key in list(cleaner.scan_iter(match=Keys(own.key_prefix).all_keys_pattern(), count=1000)):
        cleaner.delete(key)
    cleaner.close()


# --- (1) publishing ------------------------------------------------------------------------------------

USERS = 10_000  # 157 user buckets in 10 groups: every primary holds some
CHUNK = 500
LOCK_TTL = 3.0  # a lock left on a killed primary (and its replica) expires this soon; chunks refresh it


def _publish(rig: Rig, users: VectorSet, items: VectorSet) -> PublishResult:
    return publish(
        rig.client,
        rig.keys,
        TYPE,
        frame(1),
        users=users,
        items=items,
        chunk_size=CHUNK,
        lock_ttl_seconds=LOCK_TTL,
        replication=Replication.of(rig.settings),
    )


def _readable(rig: Rig, users: VectorSet, items: VectorSet) -> None:
    """Through a new client: the version's manifest and exactly its vectors, nothing else."""
    fresh = rig.fresh()
    try:
        manifest = read_manifest(fresh, rig.keys, TYPE.name, frame(1).version_id)
        assert manifest is not None and manifest.counts.user == len(users.ids)
        assert [m.version for m in list_versions(fresh, rig.keys, TYPE.name)] == [manifest.version]
        assert stored_vectors(fresh, rig.keys, manifest) == expected_vectors({Kind.USER: users, Kind.ITEM: items})
    finally:
        fresh.close()


def _victim(rig: Rig, cut: str) -> str:
    """The primary to kill: the one owning the type's control slot, or one owning only vector buckets."""
    control = rig.owner(rig.keys.manifest(TYPE.name, frame(1).version_id))
    if cut != "vectors":
        return control
    version = frame(1).version_id
    owners = {
        rig.owner(rig.keys.vectors(TYPE.name, version, Kind.USER, b)) for b in range(0, buckets_for(USERS), 16)
    }
    return sorted(owners - {control})[0]


@pytest.mark.parametrize("cut", ["vectors", "control", "commit"])
def test_a_primary_killed_while_publishing_loses_nothing_acknowledged(rig: Rig, cut: str) -> None:
    """`vectors`/`control`: a primary holding buckets / the lock and manifest dies halfway through the
    chunks; `commit`: the manifest's primary dies the moment the manifest is on it. A publish that returned
    is readable after the failover; one that raised says so and leaves nothing visible; a re-run (with
    other content where the first failed, so leftovers would show) completes."""
    register_type(rig.client, rig.keys, TYPE)
    users, items = vector_set("u", USERS, 1), vector_set("", 50, 2)
    address = _victim(rig, cut)
    kills: list[Kill] = []

    def halfway(done: int, total: int) -> None:
        if cut != "commit" and not kills and done >= total // 2:
            kills.append(Kill.primary(rig.cluster, address))

    watcher = None
    if cut == "commit":
        manifest_key = rig.keys.manifest(TYPE.name, frame(1).version_id)
        plain = rig.cluster.node(address).client()

        def kill_on_commit() -> None:
            eventually(lambda: bool(plain.exists(manifest_key)), "the manifest is on its primary")
            kills.append(Kill.primary(rig.cluster, address))

        watcher = threading.Thread(target=kill_on_commit)
        watcher.start()
    outcome: PublishResult | PublishError
    try:
        outcome = publish(
            rig.client,
            rig.keys,
            TYPE,
            frame(1),
            users=users,
            items=items,
            chunk_size=CHUNK,
            lock_ttl_seconds=LOCK_TTL,
            replication=Replication.of(rig.settings),
            progress=halfway,
        )
    except PublishError as exc:
        outcome = exc
    if watcher is not None:
        watcher.join()
    (kill,) = kills
    print(f"\n[{cut}] kill -> replica took over: {kill.wait_takeover(rig.cluster):.2f} s; publish: {outcome!r:.200}")

    if isinstance(outcome, PublishResult):
        _readable(rig, users, items)  # acknowledged: there after the failover, before anything rejoins
        restore(rig.cluster)
        again = _publish(rig, users, items)
        assert not again.created and again.manifest == outcome.manifest
        return
    assert "re-run" in str(outcome)
    if cut != "commit":
        fresh = rig.fresh()
        assert read_manifest(fresh, rig.keys, TYPE.name, frame(1).version_id) is None
        assert list_versions(fresh, rig.keys, TYPE.name) == []
        fresh.close()
    restore(rig.cluster)
    if cut == "commit":
        _publish(rig, users, items)  # the commit may or may not have survived: the re-run confirms or makes it
        _readable(rig, users, items)
        return
    # The same client re-runs with other content: the killed run's leftovers must not show through.
    other_users, other_items = vector_set("u", USERS - 3_000, 3), vector_set("", 40, 4)
    done = _publish(rig, other_users, other_items)
    assert done.created
    _readable(rig, other_users, other_items)
