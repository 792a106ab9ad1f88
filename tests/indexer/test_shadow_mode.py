"""Shadow mode against real OpenSearch, Redis and orchestrator: build, verify, swap, promote, retire."""

from __future__ import annotations

import asyncio

import pytest
from indexer_support import CATALOG_SIZE, MovableClock, RunnerFactory, grace_of, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import Mode, items_alias, shadow_index
from contract.settings import Settings
from indexer.errors import DocumentRejectedError
from indexer.scheduler import Runner

pytestmark = pytest.mark.anyio


async def test_shadow_builds_promotes_and_retires(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    make_runner: RunnerFactory,
    clock: MovableClock,
) -> None:
    settings = orchestrator.model_copy(update={"shadow_keep": 1})
    etype = make_type()
    alias = items_alias(settings.index_prefix, etype.name)
    v1 = publish_version(etype, 1)
    await wait_latest(settings, etype.name, v1)
    runner = make_runner(settings)
    report = await runner.shadow()
    (result,) = report.results
    assert result.built and result.promoted and result.recall >= settings.recall_floor
    info = await runner.orchestrator.type_info(etype.name)
    assert info.in_use == v1
    (loc,) = info.indexed
    assert loc.mode is Mode.SHADOW and loc.index == shadow_index(settings.index_prefix, etype.name, v1)
    assert opensearch_client.indices.get_alias(name=alias).keys() == {loc.index}
    assert opensearch_client.count(index=alias)["count"] == CATALOG_SIZE
    # Cold items (no vector of v1) are there with metadata but without the slot.
    assert (
        opensearch_client.count(index=alias, body={"query": {"exists": {"field": loc.vector_field}}})["count"]
        == CATALOG_SIZE - 5
    )

    again = (await runner.shadow()).results[0]
    assert not again.built and not again.promoted  # idempotent when nothing changed

    v2 = publish_version(etype, 2)
    await wait_latest(settings, etype.name, v2)
    second = (await runner.shadow()).results[0]
    assert second.built and second.promoted
    assert (await runner.orchestrator.type_info(etype.name)).in_use == v2
    old = shadow_index(settings.index_prefix, etype.name, v1)
    assert opensearch_client.indices.exists(index=old)  # still answerable within the grace period
    assert (await runner.shadow()).results[0].removed == []
    clock.shift(grace_of(settings))
    third = (await runner.shadow()).results[0]
    assert third.removed == [old]
    assert not opensearch_client.indices.exists(index=old)
    assert [x.version for x in (await runner.orchestrator.type_info(etype.name)).indexed] == [v2]
    samples = {s.name: s.value for m in runner.metrics.registry.collect() for s in m.samples}
    assert samples["lockstep_indexer_docs_indexed_total"] == 2 * CATALOG_SIZE
    assert samples["lockstep_indexer_promotions_total"] == 2


async def test_rejected_document_fails_the_cycle_and_names_the_item(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch, make_runner: RunnerFactory
) -> None:
    etype = make_type()
    v1 = publish_version(etype, 1, bad_item="42")
    await wait_latest(orchestrator, etype.name, v1)
    runner = make_runner(orchestrator)
    with pytest.raises(DocumentRejectedError, match=r"item '42'"):
        await runner.shadow()
    info = await runner.orchestrator.type_info(etype.name)
    assert info.in_use is None and info.indexed == []
    assert not opensearch_client.indices.exists_alias(name=items_alias(orchestrator.index_prefix, etype.name))


def _sample(runner: Runner, name: str) -> float:
    return sum(s.value for m in runner.metrics.registry.collect() for s in m.samples if s.name == name)


async def test_run_counts_the_cycles_that_complete_not_those_a_held_lock_skips(
    orchestrator: Settings, publish_version, make_runner: RunnerFactory
) -> None:
    etype = make_type()
    await wait_latest(orchestrator, etype.name, publish_version(etype, 1))
    runner = make_runner(orchestrator)
    other = make_runner(orchestrator)  # another indexer holds the type's lock (a killed one's, not expired)
    stop = asyncio.Event()

    async def until(name: str, value: float) -> None:
        async with asyncio.timeout(60):
            while True:  # the runner's own task counts: there is no event to wait on
                if _sample(runner, name) >= value:
                    return
                await asyncio.sleep(0.05)

    async with other.lock(f"shadow:{etype.name}"):
        run = asyncio.create_task(runner.run_forever("shadow", 0.05, [etype.name], stop))
        await until("lockstep_indexer_cycle_seconds_count", 2)
        assert _sample(runner, "lockstep_indexer_cycles_total") == 0
    await until("lockstep_indexer_cycles_total", 1)
    stop.set()
    await run
    assert (await runner.orchestrator.type_info(etype.name)).in_use is not None
