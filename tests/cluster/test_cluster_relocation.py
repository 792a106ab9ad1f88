"""The cluster moves a copy of a shadow build between nodes while the build verifies: still promoted.

Rebalancing may start whenever the shard count per node changes (another index created, a node back). A
moving copy is whole and answers until the move hands over, so the copies check counts it on its source
node. Recovery is throttled here so the move is still under way when verification runs.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cluster_support import Cluster, serving_process
from cluster_world import drop_keys, free_url, own_prefixes, publish_type, runner

from contract.indexing import items_alias, shadow_index
from indexer.scheduler import Runner
from search.results import unavailable_shards

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]

ITEMS = 1000
THROTTLE = {"indices.recovery.max_bytes_per_sec": "1kb"}


async def test_a_copy_moving_between_nodes_during_verification_does_not_stop_the_promotion(
    cluster: Cluster, runners: list[Runner]
) -> None:
    settings = own_prefixes(
        cluster.settings,
        orchestrator_url=free_url(),
        shadow_shards=3,
        shadow_replicas=1,
        orchestrator_poll_seconds=0.2,
    )
    published = publish_type(settings, "bpr-d16", 16, ITEMS, seed=11)
    name, version = published.etype.name, published.version
    index = shadow_index(settings.index_prefix, name, version)
    base = cluster.layout.cluster_opensearch[0].url
    nodes = {node.name for node in cluster.layout.cluster_opensearch}
    seen_moving: list[str] = []

    def move_a_replica() -> None:
        httpx.put(f"{base}/_cluster/settings", json={"transient": THROTTLE}, timeout=30).raise_for_status()
        rows = httpx.get(f"{base}/_cat/shards/{index}", params={"format": "json"}, timeout=30).json()
        replica = next(r for r in rows if r["prirep"] == "r" and r["shard"] == "0")
        holders = {r["node"] for r in rows if r["shard"] == "0"}
        (target,) = nodes - holders
        move = {"index": index, "shard": 0, "from_node": replica["node"], "to_node": target}
        httpx.post(
            f"{base}/_cluster/reroute", json={"commands": [{"move": move}]}, timeout=30
        ).raise_for_status()

    async def step(where: str) -> None:
        if where == "replicated":
            await asyncio.to_thread(move_a_replica)
            deadline = asyncio.get_running_loop().time() + 60
            while not any(c.state == "RELOCATING" for c in await made.search.shard_copies(index)):
                assert asyncio.get_running_loop().time() < deadline, "the move never started"
                await asyncio.sleep(0.1)
        if where == "verified":
            copies = await made.search.shard_copies(index)
            seen_moving.extend(f"{c.shard}:{c.node}" for c in copies if c.state == "RELOCATING")
            assert unavailable_shards(copies) == []

    try:
        with serving_process(settings, "orchestrator", settings.orchestrator_url):
            made = runner(settings, runners, step=step)
            (result,) = (await made.shadow()).results
            assert result.built and result.promoted
            # Verification ran while the copy was still on its way: the case under test happened.
            assert seen_moving
            assert (await made.orchestrator.type_info(name)).in_use == version
            assert await made.search.alias_targets(items_alias(settings.index_prefix, name)) == [index]
    finally:
        await asyncio.to_thread(settle, base, index)
        drop_keys(settings)


def settle(base: str, index: str) -> None:
    """Recovery at full speed again and the throttled moves called off, for the tests after this one."""
    reset = {"transient": {key: None for key in THROTTLE}}
    httpx.put(f"{base}/_cluster/settings", json=reset, timeout=30).raise_for_status()
    rows = httpx.get(f"{base}/_cat/shards/{index}", params={"format": "json"}, timeout=30).json()
    for row in rows:
        if row["state"] != "RELOCATING":
            continue
        # A recovery under way keeps its throttled pace (the rebalancer may have started one of its own):
        # cancelling it on its target ends the move, the source copy stays.
        target = row["node"].split()[-1]
        cancel = {"index": index, "shard": int(row["shard"]), "node": target, "allow_primary": True}
        httpx.post(
            f"{base}/_cluster/reroute", json={"commands": [{"cancel": cancel}]}, timeout=30
        ).raise_for_status()
    params = {"wait_for_no_relocating_shards": "true", "timeout": "90s"}
    httpx.get(f"{base}/_cluster/health", params=params, timeout=120).raise_for_status()
