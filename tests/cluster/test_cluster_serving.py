"""A shadow build on 3 shards with 1 replica, served from the 3-node cluster, and a node SIGKILLed under load.

One type over 3,000 goodbooks books (32-d, dot product) is built through the indexer, served by `lockstep
serving serve` and its orchestrator (processes), every OpenSearch call going to the three nodes' host list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from cluster_support import (
    Answer,
    Cluster,
    Load,
    copies_of,
    kill,
    manager_of,
    node_named,
    serving_process,
    wait_nodes,
)
from cluster_world import Published, drop_keys, free_url, own_prefixes, publish_type, runner

from contract.indexing import items_alias, shadow_index
from indexer.scheduler import Runner
from indexer.shadow import ShadowResult
from serving.evaluation import evaluate

pytestmark = pytest.mark.cluster

ITEMS = 3000


@dataclass(frozen=True)
class Served:
    """The published type, its shadow build's result and index, and serving's URL."""

    published: Published
    result: ShadowResult
    index: str
    serving_url: str


@pytest.fixture(scope="module")
def served(cluster: Cluster) -> Iterator[Served]:
    """The type published, shadow-built on 3 shards with 1 replica, and served."""
    settings = own_prefixes(
        cluster.settings,
        orchestrator_url=free_url(),
        serving_url=free_url(),
        shadow_shards=3,
        shadow_replicas=1,
        orchestrator_poll_seconds=0.2,
        serving_result_cache_seconds=0.0,  # every request reaches OpenSearch
        # Three JVMs share 2 cores with the load: a CPU-starved orchestrator call is no OpenSearch fault.
        serving_orchestrator_timeout_seconds=2.0,
    )
    published = publish_type(settings, "als-d32", 32, ITEMS, seed=3)
    try:
        with serving_process(settings, "orchestrator", settings.orchestrator_url):

            async def build() -> ShadowResult:
                made: list[Runner] = []
                try:
                    (result,) = (await runner(settings, made).shadow()).results
                    assert isinstance(result, ShadowResult)
                    return result
                finally:
                    for each in made:
                        await each.aclose()

            result = asyncio.run(build())
            with serving_process(settings, "serving", settings.serving_url):
                index = shadow_index(settings.index_prefix, published.etype.name, published.version)
                yield Served(published, result, index, settings.serving_url)
    finally:
        drop_keys(settings)


def test_a_shadow_build_on_three_shards_with_a_replica_is_green_verified_copy_by_copy_and_promoted(
    served: Served, cluster: Cluster
) -> None:
    result, settings = served.result, served.published.settings
    assert result.built and result.promoted and result.recall is not None
    assert result.recall >= settings.recall_floor
    assert result.timings.replicate > 0
    print(f"\nshadow build on 3 shards + 1 replica: {result.timings.as_dict()}, recall@10 {result.recall}")
    copies = copies_of(cluster.layout, served.index)
    assert len(copies) == 6  # every copy started: green
    for shard in range(3):
        held = [c for c in copies if c.shard == shard]
        assert len(held) == 2 and len({c.node for c in held}) == 2
        assert [c.primary for c in held].count(True) == 1
    assert {c.node for c in copies} == {node.name for node in cluster.layout.cluster_opensearch}
    base = cluster.layout.cluster_opensearch[0].url
    alias = items_alias(settings.index_prefix, served.published.etype.name)
    assert list(httpx.get(f"{base}/_alias/{alias}", timeout=30).json()) == [served.index]
    health = httpx.get(f"{base}/_cluster/health/{served.index}", timeout=30).json()
    assert health["status"] == "green" and health["active_shards"] == 6


@pytest.mark.anyio
async def test_served_top10_is_the_exact_top10_on_three_shards(served: Served) -> None:
    report = await evaluate(served.published.settings, served.serving_url, None, users=300)
    figures = report["types"][served.published.etype.name]
    print(f"\nvia serving on 3 shards: {figures}")
    assert figures["failed_requests"] == 0 and figures["exact_compared"] == 300
    assert figures["exact_top10_share"] >= 0.95
    assert figures["fallback_share"] == 0.0


@pytest.mark.anyio
async def test_sigkill_of_nodes_under_load_degrades_only_when_no_copy_answers(
    served: Served, cluster: Cluster
) -> None:
    """Kill a node holding primaries: every answer stays whole. Kill a second: a shard has no copy left,
    so answers are partial, labelled degraded naming it. Never a 5xx, never a mixed version."""
    layout, index = cluster.layout, served.index
    copies = copies_of(layout, index)
    manager = manager_of(layout)
    holders = sorted({c.node for c in copies if c.primary}, key=lambda name: name != manager)
    first = holders[0]  # the cluster manager if it holds a primary: an election on top of the loss
    # The second victim shares a shard with the first: once both are gone, that shard has no copy.
    lost_shard = next(c.shard for c in copies if c.node == first)
    second = next(c.node for c in copies if c.shard == lost_shard and c.node != first)
    survivor = next(node for node in layout.cluster_opensearch if node.name not in (first, second))
    load = Load(served.serving_url, served.published.users, served.published.etype.name)
    running = asyncio.create_task(load.run())
    try:
        before = await load.until(lambda answers: len(answers) >= 200)
        await asyncio.to_thread(kill, node_named(layout, first))
        await asyncio.to_thread(wait_nodes, survivor, 2)
        one_lost = await load.until(lambda answers: len(answers) >= before + 500)
        await asyncio.to_thread(kill, node_named(layout, second))
        partial = await load.until(lambda answers: any(a.degraded for a in answers[one_lost:]))
        end = await load.until(lambda answers: len(answers) >= partial + 200)
    finally:
        load.stop()
        await running
        await asyncio.to_thread(cluster.restore)
    answers = load.answers
    version = served.published.version
    print(
        f"\n{len(answers)} answers: {before} before the first kill, {one_lost - before} with {first} down, "
        f"{len(answers) - one_lost} with {second} down too ({sum(a.degraded for a in answers)} degraded)"
    )
    assert [a for a in answers if a.status != 200] == []
    # A search in flight on a node as it dies may fail inside OpenSearch (a 500 search_phase_execution_
    # exception, seen in CI). It is asked once more (search.opensearch); should that fail too it is
    # answered degraded from the cached popular list (no version), never as an error: at most one per
    # client and kill.
    failed = [a for a in answers if a.degraded and "OpenSearch failed" in (a.reason or "")]
    assert len(failed) <= 2 * load.concurrency, failed
    assert [a for a in answers if (a.mixed or a.version != version) and a not in failed] == []
    assert [a for a in answers[:before] if a.degraded] == []
    assert [a for a in answers[before:one_lost] if a.degraded and a not in failed] == []  # copies answered
    degraded = [a for a in answers[one_lost:end] if a.degraded and a not in failed]
    # Once one answer is partial, only calls already past OpenSearch when the node died can still be whole.
    assert sum(a.degraded for a in answers[partial:end]) >= end - partial - load.concurrency
    assert all(_names_the_shard(a, lost_shard, index) for a in degraded), degraded[0]


def _names_the_shard(answer: Answer, shard: int, index: str) -> bool:
    reason = answer.reason or ""
    return "partial answer" in reason and f"shard {shard} of {index}" in reason
