"""The live index on the 3-node cluster: 3 shards with 1 replica, every write waiting for both copies."""

from __future__ import annotations

import pytest
from cluster_support import Cluster, serving_process
from cluster_world import drop_keys, free_url, own_prefixes, publish_type, runner

from contract.indexing import live_index
from indexer.scheduler import Runner

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]

ITEMS = 1000


async def test_an_incremental_cycle_writes_every_copy_of_the_live_index_and_promotes(
    cluster: Cluster, runners: list[Runner]
) -> None:
    settings = own_prefixes(
        cluster.settings,
        orchestrator_url=free_url(),
        live_shards=3,
        live_replicas=1,
        live_wait_for_active_shards="all",
        orchestrator_poll_seconds=0.2,
    )
    published = publish_type(settings, "ease-d16", 16, ITEMS, seed=7)
    live = live_index(settings.index_prefix)
    try:
        with serving_process(settings, "orchestrator", settings.orchestrator_url):
            indexer = runner(settings, runners)
            (result,) = (await indexer.incremental()).results
            assert result.bootstrapped
            (written,) = result.types
            assert written.promoted and written.written == ITEMS
            info = await indexer.orchestrator.type_info(published.etype.name)
            assert info.in_use == published.version
            copies = await indexer.search.shard_copies(live)
            assert [(c.shard, c.state) for c in copies] == [(s, "STARTED") for s in (0, 0, 1, 1, 2, 2)]
            for shard in range(3):
                primary, replica = (c for c in copies if c.shard == shard)
                assert primary.docs == replica.docs and primary.node != replica.node
            assert sum(c.docs or 0 for c in copies if c.primary) == ITEMS
    finally:
        drop_keys(settings)
