"""Live index maintenance: churn's deleted documents are reported and expunged past the configured share;
segments past the configured count are merged down to it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from indexer_support import MovableClock, RunnerFactory, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import live_index
from contract.keys import Keys
from contract.settings import Settings
from indexer.catalog import Item
from indexer.incremental import IncrementalResult, MergeBudget, MergeKind
from indexer.scheduler import Runner

pytestmark = pytest.mark.anyio


def _deleted(client: OpenSearch, index: str) -> int:
    return int(client.indices.stats(index=index, metric="docs")["_all"]["primaries"]["docs"]["deleted"])


def _samples(runner: Runner) -> dict[str, float]:
    return {s.name: s.value for m in runner.metrics.registry.collect() for s in m.samples}


def test_one_merge_per_interval_and_past_both_limits_each_in_turn() -> None:
    budget, hour = MergeBudget(), timedelta(hours=1)
    now = datetime(2026, 12, 5, tzinfo=UTC)
    both = [MergeKind.SEGMENTS, MergeKind.DELETES]
    assert budget.choose(now, hour, []) is None  # nothing past a limit spends nothing
    assert budget.choose(now, hour, both) is MergeKind.SEGMENTS
    assert budget.choose(now + timedelta(minutes=59), hour, both) is None
    # Churn keeps both past their limits: the expunge gets its turn, then the segments theirs.
    assert budget.choose(now + hour, hour, both) is MergeKind.DELETES
    assert budget.choose(now + 2 * hour, hour, both) is MergeKind.SEGMENTS
    assert budget.choose(now + 3 * hour, hour, [MergeKind.SEGMENTS]) is MergeKind.SEGMENTS
    assert budget.choose(now + 4 * hour, hour, both) is MergeKind.DELETES


async def test_churn_is_reported_and_expunged_past_the_share_once_per_interval(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    redis_client: redis.Redis,
    keys: Keys,
    make_runner: RunnerFactory,
    clock: MovableClock,
) -> None:
    settings = orchestrator.model_copy(
        update={"live_max_deleted_ratio": 0.05, "live_expunge_interval_seconds": 60.0}
    )
    etype = make_type()
    runner = make_runner(settings)
    await wait_latest(settings, etype.name, publish_version(etype, 1))
    await runner.incremental()
    catalog = await runner.catalog()
    # A retitle rewrites the document: the old copy is deleted.
    await runner.store.put([_retitled(item) for item in catalog[: len(catalog) // 2]])
    clock.shift(60)
    (churned,) = (await runner.incremental()).results
    assert churned.changes == len(catalog) // 2 and churned.expunged
    stats = churned.stats
    assert stats is not None
    samples = _samples(runner)
    assert samples["lockstep_indexer_live_segments"] == stats.segments >= 1
    assert samples["lockstep_indexer_live_deleted_ratio"] == pytest.approx(stats.deleted_ratio)
    assert samples["lockstep_indexer_live_bytes"] == stats.size_bytes > 0
    expunges = samples["lockstep_indexer_live_expunges_total"]
    # Within the interval no other merge starts, whatever the share of deleted documents; once the
    # expunge has ended (in the background), a cycle's figures are the index's.
    live = live_index(settings.index_prefix)
    guard = asyncio.get_running_loop().time() + 120  # fails a run that would otherwise hang
    while True:
        (again,) = (await runner.incremental()).results
        assert not again.expunged and again.stats is not None
        if not again.stats.merging and again.stats.deleted_docs == _deleted(opensearch_client, live):
            break
        assert asyncio.get_running_loop().time() < guard, f"the figures never settled: {again.stats}"
        await asyncio.sleep(0.1)
    assert _samples(runner)["lockstep_indexer_live_expunges_total"] == expunges
    # Once OpenSearch's retention lease has passed the deletions, an expunge drops them (a condition
    # reached in real time, ~30 s: each round moves the injected clock past the interval and tries again).
    guard = asyncio.get_running_loop().time() + 300  # fails a run that would otherwise hang
    started = 0
    while True:
        clock.shift(60)
        (later,) = (await runner.incremental()).results
        assert later.stats is not None
        if later.stats.deleted_ratio <= 0.05:
            break
        started += later.expunged
        assert asyncio.get_running_loop().time() < guard, f"deleted documents never expunged: {later.stats}"
    assert started and later.stats.docs == stats.docs


async def test_below_the_share_nothing_is_merged(
    orchestrator: Settings,
    publish_version,
    redis_client: redis.Redis,
    keys: Keys,
    make_runner: RunnerFactory,
) -> None:
    settings = orchestrator.model_copy(update={"live_max_deleted_ratio": 1.0})
    etype = make_type()
    runner = make_runner(settings)
    await wait_latest(settings, etype.name, publish_version(etype, 1))
    await runner.incremental()
    catalog = await runner.catalog()
    await runner.store.put([_retitled(item) for item in catalog[:100]])
    (churned,) = (await runner.incremental()).results
    assert churned.stats is not None and churned.stats.deleted_ratio > 0.05
    assert not churned.expunged and _samples(runner)["lockstep_indexer_live_expunges_total"] == 0


async def test_segments_past_the_limit_are_merged_down_to_it_in_the_background_once_per_interval(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    redis_client: redis.Redis,
    keys: Keys,
    make_runner: RunnerFactory,
    clock: MovableClock,
) -> None:
    # Expunges never qualify here: what merges is the segment count alone. An interval of an hour: the
    # test's own steps never outlast it in real time (the clock is the wall clock plus its shifts).
    settings = orchestrator.model_copy(
        update={
            "live_max_segments": 2,
            "live_max_deleted_ratio": 1.0,
            "live_expunge_interval_seconds": 3600.0,
        }
    )
    limit = settings.live_max_segments * settings.live_shards
    etype = make_type()
    runner = make_runner(settings)
    await wait_latest(settings, etype.name, publish_version(etype, 1))
    await runner.incremental()
    catalog = await runner.catalog()
    batches = iter(range(0, len(catalog), 10))

    async def churn() -> IncrementalResult:
        start = next(batches)
        await runner.store.put([_retitled(item) for item in catalog[start : start + 10]])
        (cycle,) = (await runner.incremental()).results
        assert cycle.stats is not None
        return cycle

    def merges() -> float:
        return _samples(runner)["lockstep_indexer_live_merges_total"]

    clock.shift(3600)  # whatever the bootstrap spent, this interval's merge is free
    before = merges()
    # Each cycle's writes are refreshed into a segment of their own: past the limit, a cycle starts a merge.
    for _ in range(limit + 6):
        merged = await churn()
        if merged.merged:
            break
    assert merged.merged and not merged.expunged
    assert merged.stats is not None and merged.stats.segments > limit
    assert merges() == before + 1
    # The merge runs in the background; a later cycle's refresh puts its result in front of searches.
    guard = asyncio.get_running_loop().time() + 120  # fails a run that would otherwise hang
    while True:
        (after,) = (await runner.incremental()).results
        assert after.stats is not None and not after.merged
        if after.stats.segments <= limit and not after.stats.merging:
            break
        assert asyncio.get_running_loop().time() < guard, f"never merged down to {limit}: {after.stats}"
        await asyncio.sleep(0.2)
    assert after.stats.docs == len(catalog)  # a merge loses no document
    assert _samples(runner)["lockstep_indexer_live_segments"] == after.stats.segments
    live = live_index(settings.index_prefix)
    shards = opensearch_client.indices.segments(index=live)["indices"][live]["shards"]
    searched = [
        segment
        for copies in shards.values()
        for copy in copies
        if copy["routing"]["primary"]
        for segment in copy["segments"].values()
        if segment["search"]
    ]
    assert len(searched) <= limit
    # Within the interval no other merge starts, however many segments pile up; past it, one does.
    later = [await churn() for _ in range(limit + 2)]
    assert not any(cycle.merged or cycle.expunged for cycle in later)
    assert later[-1].stats is not None and later[-1].stats.segments > limit
    assert merges() == before + 1
    clock.shift(3600)
    assert any([(await churn()).merged for _ in range(3)]) and merges() == before + 2


def _retitled(item: Item) -> dict[str, Any]:
    return item.replaced(title=f"{item.fields['title']} (2nd ed.)").document()
