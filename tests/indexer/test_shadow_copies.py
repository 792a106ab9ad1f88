"""Shadow builds on several shards and replicas: every copy waited for and checked, none promoted missing one.

No node holds a replica beside its primary, so a build asking for as many replicas as there are nodes never
reaches green: the cycle fails, nothing points at the index, and a later cycle (with a layout the cluster can
hold) completes it. Runs on one node and, in the cluster tier, on three.
"""

from __future__ import annotations

import pytest
from indexer_support import CATALOG_SIZE, RunnerFactory, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import items_alias, shadow_index
from contract.settings import Settings
from indexer.copies import check_copies
from indexer.errors import ClusterError, VerificationError
from search.results import ShardCopy
from search.templates import IndexLayout

pytestmark = pytest.mark.anyio


async def test_a_build_on_three_shards_checks_each_and_is_promoted(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch, make_runner: RunnerFactory
) -> None:
    settings = orchestrator.model_copy(update={"shadow_shards": 3})
    etype = make_type()
    v1 = publish_version(etype, 1)
    await wait_latest(settings, etype.name, v1)
    (result,) = (await make_runner(settings).shadow()).results
    assert result.built and result.promoted and result.recall >= settings.recall_floor
    index = shadow_index(settings.index_prefix, etype.name, v1)
    rows = opensearch_client.cat.shards(index=index, format="json", h="shard,prirep,state,docs")
    copies = ["p", *["r"] * settings.shadow_replicas]
    assert sorted((r["shard"], r["prirep"], r["state"]) for r in rows) == [
        (str(shard), kind, "STARTED") for shard in range(3) for kind in copies
    ]
    assert sum(int(r["docs"]) for r in rows if r["prirep"] == "p") == CATALOG_SIZE


async def test_a_build_whose_copies_cannot_all_start_fails_and_a_later_cycle_completes(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch, make_runner: RunnerFactory
) -> None:
    etype = make_type()
    alias = items_alias(orchestrator.index_prefix, etype.name)
    v1 = publish_version(etype, 1)
    await wait_latest(orchestrator, etype.name, v1)
    nodes = int(opensearch_client.cluster.health()["number_of_data_nodes"])
    unreachable = orchestrator.model_copy(
        update={"shadow_shards": 2, "shadow_replicas": nodes, "index_green_timeout_seconds": 1.0}
    )
    runner = make_runner(unreachable)
    with pytest.raises(ClusterError, match=r"not every shard copy started within 1 s \(.*replica UNASSIGNED"):
        await runner.shadow()
    info = await runner.orchestrator.type_info(etype.name)
    assert info.in_use is None and info.indexed == []
    assert not opensearch_client.indices.exists_alias(name=alias)
    failed = {"mode": "shadow", "reason": "ClusterError"}
    assert runner.metrics.registry.get_sample_value("lockstep_indexer_failures_total", failed) == 1
    (result,) = (await make_runner(orchestrator).shadow()).results
    index = shadow_index(orchestrator.index_prefix, etype.name, v1)
    assert result.removed == [index]  # the unverified build is dropped, then built again
    assert result.built and result.promoted
    assert (await runner.orchestrator.type_info(etype.name)).in_use == v1
    assert opensearch_client.indices.get_alias(name=alias).keys() == {index}


def test_copy_checks_name_what_is_missing() -> None:
    layout = IndexLayout(shards=2, replicas=1)
    whole = [
        ShardCopy("x", 0, True, "STARTED", "n1", 4),
        ShardCopy("x", 0, False, "STARTED", "n2", 4),
        ShardCopy("x", 1, True, "STARTED", "n2", 6),
        ShardCopy("x", 1, False, "STARTED", "n3", 6),
    ]
    check_copies("x", whole, layout, 10)
    with pytest.raises(VerificationError, match="the primaries hold 10 documents, the catalog 11"):
        check_copies("x", whole, layout, 11)
    lost = [*whole[:3], ShardCopy("x", 1, False, "UNASSIGNED", None, None)]
    with pytest.raises(
        VerificationError,
        match=r"shard 1 has 1 started copies on 1 nodes, wants 2 \(shard 1 primary STARTED on n2, "
        r"shard 1 replica UNASSIGNED\)",
    ):
        check_copies("x", lost, layout, 10)
    short = [*whole[:3], ShardCopy("x", 1, False, "STARTED", "n3", 5)]
    with pytest.raises(VerificationError, match="a copy on n3 holds 5 documents, its primary 6"):
        check_copies("x", short, layout, 10)
    # Moved by the cluster's rebalancing: whole, and on its source node until the move hands over.
    check_copies("x", [*whole[:3], ShardCopy("x", 1, False, "RELOCATING", "n3", 6)], layout, 10)
    initializing = [*whole[:3], ShardCopy("x", 1, False, "INITIALIZING", "n3", None)]
    with pytest.raises(VerificationError, match="shard 1 has 1 started copies"):
        check_copies("x", initializing, layout, 10)
    together = [*whole[:3], ShardCopy("x", 1, False, "STARTED", "n2", 6)]
    with pytest.raises(VerificationError, match="2 started copies on 1 nodes"):
        check_copies("x", together, layout, 10)
