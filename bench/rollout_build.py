"""One shadow build of the rollout benchmark's type, in a process of its own as the indexer runs.

`python -m bench.rollout_build TYPE ITEMS BATCH`: builds the type's newest published version through the
shadow indexer (fetch, bulk, refresh + force-merge, replicas, verify, promote) in batches of BATCH items,
with the LOCKSTEP_* settings of its environment, the throttle among them. It prints `ready` once loaded and
starts on a line on stdin (a long-running indexer does not pay its start-up during a rollout), then prints
the build's timings as JSON.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from contract.settings import IndexerSettings
from indexer.catalog import Item
from indexer.metrics import IndexerMetrics
from indexer.scheduler import connect_orchestrator
from indexer.shadow import ShadowIndexer
from search.client import build_client


def catalog(n: int) -> list[Item]:
    """The benchmark's items: ids 0..n-1 with a title (the vectors are the published version's)."""
    return [Item.from_document({"item_id": str(i), "title": f"item {i}"}) for i in range(n)]


async def build(type_name: str, items: list[Item], batch: int) -> dict[str, object]:
    settings = IndexerSettings()
    search = build_client(settings, timeout=600)
    try:
        async with connect_orchestrator(settings, timeout=60) as orchestrator:
            info = await orchestrator.type_info(type_name)
            metrics = IndexerMetrics.create()
            shadow = ShadowIndexer(settings, search, orchestrator, items, metrics, batch_size=batch)
            result = await shadow.cycle(info)
    finally:
        await search.aclose()
    backoffs = metrics.registry.get_sample_value("lockstep_indexer_backoffs_total")
    return {
        "version": info.latest,
        "recall": result.recall,
        **result.timings.as_dict(),
        "throttle_backoffs": backoffs,
        "write_rate_limit_at_end": metrics.registry.get_sample_value("lockstep_indexer_write_rate_limit"),
    }


if __name__ == "__main__":
    loaded = catalog(int(sys.argv[2]))
    print("ready", flush=True)
    sys.stdin.readline()
    print(orjson.dumps(asyncio.run(build(sys.argv[1], loaded, int(sys.argv[3])))).decode(), flush=True)
