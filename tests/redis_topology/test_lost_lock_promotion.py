"""Promotion is idempotent: two indexers that both believe they hold the lock promote the same version.

A failover can lose the indexer lock (its SET is not WAIT-acknowledged, so the promoted replica may lack
it): a second indexer then takes the lock while the first still runs its cycle, and both promote. The
result must be what one promotion gives: in_use on the version, one audit entry, the indexed record.
"""

from __future__ import annotations

import asyncio

import pytest
from failover_support import until
from topology_support import TYPE, auth, location, orchestrator_http, publish_versions

from contract import routes
from contract.keys import Keys
from contract.redis_clients import SyncRedis, async_client
from contract.settings import Settings
from indexer.errors import LockBusyError
from indexer.lock import IndexerLock
from indexer.metrics import IndexerMetrics
from indexer.shadow import ShadowIndexer
from orchestrator_client import OrchestratorClient
from search.client import build_client

pytestmark = pytest.mark.anyio


async def test_a_promotion_repeated_after_a_lost_indexer_lock_has_one_result(
    cluster_client: SyncRedis, cluster_settings: Settings
) -> None:
    first, second = publish_versions(cluster_client, cluster_settings, 50)
    keys = Keys(cluster_settings.key_prefix)
    indexer_key = cluster_settings.indexer_keys[0].get_secret_value()
    redis = async_client(cluster_settings)
    search = build_client(cluster_settings)
    try:
        async with orchestrator_http(cluster_settings) as api:
            indexer = auth(cluster_settings, "indexer")
            put = await api.put(routes.indexed_path(TYPE.name, first), json=location(first), headers=indexer)
            assert put.status_code == 204, put.text
            body = {"expected": None, "version": first, "reason": "first"}
            assert (
                await api.put(routes.in_use_path(TYPE.name), json=body, headers=indexer)
            ).status_code == 200

            holder = IndexerLock(redis, keys, "shadow", ttl_seconds=0.6)  # type: ignore[arg-type]
            await holder.__aenter__()
            # The failover lost the lock's key: another indexer takes the lock while the first one runs.
            await redis.delete(keys.indexer_lock("shadow"))
            async with IndexerLock(redis, keys, "shadow", ttl_seconds=30.0):  # type: ignore[arg-type]
                url = str(api.base_url)
                async with (
                    OrchestratorClient(url, indexer_key, timeout=10) as one,
                    OrchestratorClient(url, indexer_key, timeout=10) as other,
                ):
                    info = await one.type_info(TYPE.name)
                    assert (info.latest, info.in_use) == (second, first)
                    indexers = [
                        ShadowIndexer(cluster_settings, search, client, [], IndexerMetrics.create())
                        for client in (one, other)
                    ]
                    # Both decided to promote from the same state; the first also retries (a lost reply).
                    await asyncio.gather(*(shadow.promote(info, second, 50) for shadow in indexers))
                    await indexers[0].promote(info, second, 50)
                    after = await one.type_info(TYPE.name)
                    history = await one.in_use_history(TYPE.name)
            # The first indexer learns it lost the lock at its next renewal, and stops promoting.
            await until(lambda: holder.lost, "the first indexer notices its lock is gone")
            with pytest.raises(LockBusyError):
                holder.check()
            await holder.__aexit__(None, None, None)
    finally:
        await search.aclose()
        await redis.aclose()

    assert after.in_use == second
    assert [(c.from_version, c.to_version) for c in history] == [(first, second), (None, first)]
    assert {loc.version for loc in after.indexed} == {first, second}
