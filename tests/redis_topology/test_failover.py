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
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from failover_support import (
    Kill,
    Timeline,
    expected_vectors,
    restore,
    stored_vectors,
    until,
    until_async,
)
from redis_servers import NO_LOGIN, ThrowawayCluster, eventually
from topology_support import TYPE, auth, frame, location, orchestrator_http, publish_versions, vector_set

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
            **NO_LOGIN,
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
        assert stored_vectors(fresh, rig.keys, manifest) == expected_vectors(
            {Kind.USER: users, Kind.ITEM: items}
        )
    finally:
        fresh.close()


def _victim(rig: Rig, cut: str) -> str:
    """The primary to kill: the one owning the type's control slot, or one owning only vector buckets."""
    control = rig.owner(rig.keys.manifest(TYPE.name, frame(1).version_id))
    if cut != "vectors":
        return control
    version = frame(1).version_id
    owners = {
        rig.owner(rig.keys.vectors(TYPE.name, version, Kind.USER, b))
        for b in range(0, buckets_for(USERS), 16)
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
    took_over = kill.wait_takeover(rig.cluster)
    print(f"\n[publish, {cut}] kill -> replica took over {took_over:.2f} s; publish: {outcome!r:.160}")

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
        _publish(
            rig, users, items
        )  # the commit may or may not have survived: the re-run confirms or makes it
        _readable(rig, users, items)
        return
    # The same client re-runs with other content: the killed run's leftovers must not show through.
    other_users, other_items = vector_set("u", USERS - 3_000, 3), vector_set("", 40, 4)
    done = _publish(rig, other_users, other_items)
    assert done.created
    _readable(rig, other_users, other_items)


# --- (2) in_use compare-and-set and rollback -----------------------------------------------------------


async def _index_all(api: httpx.AsyncClient, settings: Settings, versions: list[str]) -> None:
    indexer = auth(settings, "indexer")
    for version in versions:
        recorded = await api.put(
            routes.indexed_path(TYPE.name, version), json=location(version), headers=indexer
        )
        assert recorded.status_code == 204, recorded.text
    first = {"expected": None, "version": versions[0], "reason": "first"}
    moved = await api.put(routes.in_use_path(TYPE.name), json=first, headers=indexer)
    assert moved.status_code == 200, moved.text


def _audit(client: SyncRedis, keys: Keys) -> list[dict[str, str]]:
    """The audit stream as stored, oldest first."""
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _id, fields in client.xrange(keys.audit(TYPE.name))  # type: ignore[union-attr]
    ]


async def test_in_use_changes_across_a_primary_kill_are_kept_when_acknowledged(rig: Rig) -> None:
    """Three indexers compare-and-set in_use round three versions and an admin rolls back, while the
    primary of the type's control slot dies: every 200's move is in the audit trail and in_use after the
    failover, every other answer is a 409 refusal or a 503 with Retry-After, and writes succeed again once
    the killed node is back as a replica."""
    versions = publish_versions(rig.client, rig.settings, 20, months=3)
    timeline = Timeline()
    stop = asyncio.Event()
    indexer, admin = auth(rig.settings, "indexer"), auth(rig.settings, "admin")

    async def promoter(worker: int, api: httpx.AsyncClient) -> None:
        believed: str | None = versions[0]
        for n in itertools.count():
            if stop.is_set():
                return
            target = versions[(versions.index(believed or versions[0]) + 1) % len(versions)]
            body = {"expected": believed, "version": target, "reason": f"cas {worker}.{n}"}
            call = await timeline.call(
                body["reason"], api.put(routes.in_use_path(TYPE.name), json=body, headers=indexer)
            )
            if call.status == 200:
                believed = call.body["to_version"]
            elif call.status == 409:
                info = await api.get(routes.type_path(TYPE.name), headers=indexer)
                if info.status_code == 200:
                    believed = info.json()["in_use"]

    async def roller(api: httpx.AsyncClient) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            reason = f"rollback {n}"
            await timeline.call(
                reason, api.post(routes.rollback_path(TYPE.name), json={"reason": reason}, headers=admin)
            )

    async with orchestrator_http(rig.settings) as api:
        await _index_all(api, rig.settings, versions)
        tasks = [asyncio.create_task(promoter(w, api)) for w in range(3)] + [asyncio.create_task(roller(api))]
        await until(lambda: len(timeline.after(0.0)) >= 30, "30 changes acknowledged before the kill")
        kill = Kill.primary(rig.cluster, rig.owner(rig.keys.in_use(TYPE.name)))
        took_over = await asyncio.to_thread(kill.wait_takeover, rig.cluster)
        await asyncio.to_thread(restore, rig.cluster)
        replicated = time.monotonic() - kill.at
        await until(lambda: len(timeline.after(kill.at)) >= 30, "30 changes acknowledged after the kill")
        stop.set()
        await asyncio.gather(*tasks)
        in_use = (await api.get(routes.type_path(TYPE.name), headers=indexer)).json()["in_use"]

    writes_back = timeline.recovery(kill.at)
    print(
        f"\n[in_use] kill -> replica took over {took_over:.2f} s, -> killed node back as replica "
        f"{replicated:.2f} s, -> first acknowledged change {writes_back:.2f} s; answers {timeline.statuses()}"
    )
    timeline.assert_only_refusals_and_503s({200, 409})
    assert timeline.statuses().get(503), "no call was refused during the failover: the kill hit nothing"

    fresh = rig.fresh()
    trail = _audit(fresh, rig.keys)
    stored_in_use = fresh.get(rig.keys.in_use(TYPE.name))
    fresh.close()
    by_reason = {entry["reason"]: entry for entry in trail}
    assert len(by_reason) == len(trail)
    for call in timeline.calls:
        if call.status == 200 and call.body["from_version"] != call.body["to_version"]:
            entry = by_reason.get(call.what)
            assert entry is not None, f"acknowledged change lost in the failover: {call}"
            assert (entry["from"] or None, entry["to"]) == (
                call.body["from_version"],
                call.body["to_version"],
            )
        elif call.status == 409 or call.status == 200:
            assert call.what not in by_reason, f"a refused or no-op change left an audit entry: {call}"
    # The surviving history is one chain of moves ending at in_use: nothing applied went unrecorded.
    for earlier, later in itertools.pairwise(trail):
        assert later["from"] == earlier["to"], (earlier, later)
    assert stored_in_use is not None and stored_in_use.decode() == trail[-1]["to"] == in_use


# --- (3) serving reads ---------------------------------------------------------------------------------


async def test_reads_across_a_primary_kill_are_200_or_503_and_never_mix_versions(rig: Rig) -> None:
    """Readers fetch user vectors while a writer flips in_use between two versions and the primary of the
    type's control slot dies: every answer is a 200 or a 503 with Retry-After, and every 200's vector is
    exactly that user's vector of the version it names, a version in_use has held."""
    users = 500
    versions = publish_versions(rig.client, rig.settings, users, months=2)
    # publish_versions' content: users "u<i>" of version month m drawn with seed m.
    expected = {
        version: dict(zip(vs.ids, vs.matrix, strict=True))
        for version, vs in zip(versions, (vector_set("u", users, m) for m in (1, 2)), strict=True)
    }
    timeline, writes = Timeline(), Timeline()
    stop = asyncio.Event()
    reader, indexer = auth(rig.settings, "reader"), auth(rig.settings, "indexer")
    rng = np.random.default_rng(7)

    async def read(api: httpx.AsyncClient) -> None:
        while not stop.is_set():
            user = f"u{int(rng.integers(users))}"
            await timeline.call(user, api.get(routes.user_vector_path(TYPE.name, user), headers=reader))

    async def flip(api: httpx.AsyncClient) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            current, target = versions[n % 2], versions[(n + 1) % 2]
            body = {"expected": current, "version": target, "reason": f"flip {n}"}
            await writes.call(
                body["reason"], api.put(routes.in_use_path(TYPE.name), json=body, headers=indexer)
            )

    async with orchestrator_http(rig.settings) as api:
        await _index_all(api, rig.settings, versions)
        tasks = [asyncio.create_task(read(api)) for _ in range(4)] + [asyncio.create_task(flip(api))]
        await until(lambda: len(timeline.after(0.0)) >= 200, "200 reads before the kill")
        kill = Kill.primary(rig.cluster, rig.owner(rig.keys.in_use(TYPE.name)))
        took_over = await asyncio.to_thread(kill.wait_takeover, rig.cluster)
        await until(lambda: len(timeline.after(kill.at)) >= 200, "200 reads after the kill")
        reads_back = timeline.recovery(kill.at)
        await asyncio.to_thread(restore, rig.cluster)
        await until(lambda: len(writes.after(kill.at)) >= 4, "in_use flips again after the kill")
        stop.set()
        await asyncio.gather(*tasks)
        final = await api.get(routes.user_vector_path(TYPE.name, "u1"), headers=reader)

    print(
        f"\n[reads] kill -> replica took over {took_over:.2f} s, -> first read answered {reads_back:.2f} s; "
        f"reads {timeline.statuses()}, changes {writes.statuses()}"
    )
    timeline.assert_only_refusals_and_503s({200})
    writes.assert_only_refusals_and_503s({200, 409})
    assert timeline.statuses().get(503), "no read was refused during the failover: the kill hit nothing"
    fresh = rig.fresh()
    held = {entry["to"] for entry in _audit(fresh, rig.keys)}
    in_use = fresh.get(rig.keys.in_use(TYPE.name))
    fresh.close()
    for call in timeline.calls:
        if call.status == 200:
            version = call.body["version"]
            assert version in held, call
            assert np.array_equal(
                np.asarray(call.body["vector"], dtype=np.float32), expected[version][call.what]
            )
    assert in_use is not None and final.json()["version"] == in_use.decode()


# --- whole-cluster restart -----------------------------------------------------------------------------


def _snapshot(client: SyncRedis, keys: Keys, versions: list[str]) -> dict[str, object]:
    """Everything Lockstep stored for TYPE: registry, versions with every vector, in_use, indexed, audit."""
    manifests = {version: read_manifest(client, keys, TYPE.name, version) for version in versions}
    return {
        "types": client.hgetall(keys.types()),
        "published": client.zrange(keys.published(TYPE.name), 0, -1, withscores=True),
        "manifests": manifests,
        "vectors": {v: stored_vectors(client, keys, m) for v, m in manifests.items() if m is not None},
        "in_use": client.get(keys.in_use(TYPE.name)),
        "indexed": client.hgetall(keys.indexed(TYPE.name)),
        "audit": client.xrange(keys.audit(TYPE.name)),
    }


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
async def test_a_whole_cluster_restart_keeps_every_version_in_use_and_audit_entry(
    rig: Rig, stop: str
) -> None:
    """Every node stopped at once (SIGTERM: a clean shutdown; SIGKILL: no final fsync, the AOF as written)
    and started again from its directory: every published version with all its vectors, in_use, the
    indexed records and the audit trail are as before. Meanwhile the running orchestrator answers 503 with
    Retry-After, never a 500 (readiness too); once the cluster is back it serves again and its poller, alive,
    finds a version published after the restart."""
    versions = publish_versions(rig.client, rig.settings, 1_000, months=2)
    polled = rig.settings.model_copy(update={"orchestrator_poll_seconds": 0.2})
    indexer, admin, reader = (auth(rig.settings, role) for role in ("indexer", "admin", "reader"))
    down, back = Timeline(), Timeline()
    user = routes.user_vector_path(TYPE.name, "u7")
    async with orchestrator_http(polled) as api:
        await _index_all(api, rig.settings, versions)
        body = {"expected": versions[0], "version": versions[1], "reason": "advance"}
        assert (await api.put(routes.in_use_path(TYPE.name), json=body, headers=indexer)).status_code == 200
        rolled = await api.post(routes.rollback_path(TYPE.name), json={"reason": "bad"}, headers=admin)
        assert rolled.status_code == 200, rolled.text
        before = _snapshot(rig.client, rig.keys, versions)
        assert len(before["audit"]) == 3  # type: ignore[arg-type]

        for node in rig.cluster.nodes:
            node.stop() if stop == "SIGTERM" else node.kill()
        for _ in range(3):
            await down.call("read", api.get(user, headers=reader))
            await down.call("write", api.put(routes.in_use_path(TYPE.name), json=body, headers=indexer))
            await down.call("ready", api.get(routes.READYZ))
        restarted = time.monotonic()
        await asyncio.to_thread(restore, rig.cluster)

        async def serves() -> bool:
            return (await back.call("read", api.get(user, headers=reader))).status == 200

        await until_async(serves, "the orchestrator serves again after the restart")
        served = back.recovery(restarted)
        fresh = rig.fresh()
        after = _snapshot(fresh, rig.keys, versions)
        fresh.close()
        # The same client, its connections gone in the restart, publishes; the orchestrator's poll finds it.
        later = publish(
            rig.client,
            rig.keys,
            TYPE,
            frame(3),
            users=vector_set("u", 10, 3),
            items=vector_set("", 5, 3),
            replication=Replication.of(rig.settings),
        ).manifest.version

        async def polled_latest() -> bool:
            info = await api.get(routes.type_path(TYPE.name), headers=reader)
            return bool(info.json()["latest"] == later)

        await until_async(
            polled_latest, "the orchestrator's poller finds a version published after the restart"
        )
    print(
        f"\n[restart, {stop}] start of the nodes -> first read answered {served:.2f} s; "
        f"while down {down.statuses()}"
    )
    assert down.statuses() == {503: 9}, down.calls
    down.assert_only_refusals_and_503s(set())
    back.assert_only_refusals_and_503s({200})
    assert back.calls[-1].body["version"] == versions[0]
    assert after == before
