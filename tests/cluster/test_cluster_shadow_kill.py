"""SIGKILL a node holding primaries in the middle of a shadow build: never promoted with a missing copy.

The build is killed into at two points: after the merge, before any replica exists (a primary's only copy
is lost: the index cannot turn green, the wait times out) and after green, before verification (the copies
check finds a replica gone). Either way the cycle fails, nothing points at the index, and the next cycle,
with the node still down, builds the version again on the two nodes left and promotes it.
"""

from __future__ import annotations

import asyncio

import pytest
from cluster_support import Cluster, copies_of, kill, manager_of, node_named, serving_process, wait_nodes
from cluster_world import drop_keys, free_url, own_prefixes, publish_type, runner

from contract.indexing import items_alias, shadow_index
from indexer.errors import CYCLE_FAILURES
from indexer.scheduler import Runner

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]

ITEMS = 1000


@pytest.mark.parametrize("kill_at", ["refreshed", "replicated"])
async def test_sigkill_during_a_shadow_build_never_promotes_a_missing_copy_and_a_later_cycle_completes(
    cluster: Cluster, runners: list[Runner], kill_at: str
) -> None:
    settings = own_prefixes(
        cluster.settings,
        orchestrator_url=free_url(),
        shadow_shards=3,
        shadow_replicas=1,
        orchestrator_poll_seconds=0.2,
        index_green_timeout_seconds=15.0,
    )
    published = publish_type(settings, "bpr-d16", 16, ITEMS, seed=5)
    name, version = published.etype.name, published.version
    index = shadow_index(settings.index_prefix, name, version)
    alias = items_alias(settings.index_prefix, name)
    layout = cluster.layout
    killed: list[str] = []

    async def step(where: str) -> None:
        if where != kill_at or killed:
            return
        # A node holding a primary of the build, not the cluster manager: the loss is the copy's alone.
        manager = await asyncio.to_thread(manager_of, layout)
        copies = await asyncio.to_thread(copies_of, layout, index)
        victim = next(c.node for c in copies if c.primary and c.node != manager)
        survivor = next(node for node in layout.cluster_opensearch if node.name != victim)
        await asyncio.to_thread(kill, node_named(layout, victim))
        await asyncio.to_thread(wait_nodes, survivor, 2)
        killed.append(victim)

    try:
        with serving_process(settings, "orchestrator", settings.orchestrator_url):
            first = runner(settings, runners, step=step)
            with pytest.raises(CYCLE_FAILURES) as failed:
                await first.shadow()
            print(f"\nkilled {killed} at {kill_at!r}: {type(failed.value).__name__}: {failed.value}")
            assert killed
            info = await first.orchestrator.type_info(name)
            assert info.in_use is None and info.indexed == []  # never recorded, never promoted
            assert await first.search.alias_targets(alias) == []

            # The node is still down: the next cycle drops the unverified index and builds it again.
            second = runner(settings, runners)
            (result,) = (await second.shadow()).results
            assert result.removed == [index] and result.built and result.promoted
            assert (await second.orchestrator.type_info(name)).in_use == version
            copies = await second.search.shard_copies(index)
            assert [c.state for c in copies] == ["STARTED"] * 6
            assert killed[0] not in {c.node for c in copies}
            assert await second.search.alias_targets(alias) == [index]
    finally:
        await asyncio.to_thread(cluster.restore)
        drop_keys(settings)
