"""The cluster benchmark on tiny sizes: every side ran on its topology, the verdicts are bench.checks'.

It needs both topologies: the session's single node, and a cluster topology. The cluster the settings name
(the environment's cluster_* ports and state dir) is used when it is up; otherwise the test brings up one
of its own, on ports and a state dir of its own, and stops it afterwards.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

from bench import cluster as bench
from bench import orchestrator, serving
from contract.redis_clients import sync_client
from contract.settings import Settings
from stack import cluster, services
from stack.layout import Layout
from stack.ports import ensure_free

pytestmark = pytest.mark.cluster

SMALL = {
    "PUBLISH_USERS": 2_000,
    "PUBLISH_ITEMS": 500,
    "PUBLISH_ROUNDS": 2,
    "USER_REQUESTS": 100,
    "BATCH_REQUESTS": 10,
    "THROUGHPUT_ROUNDS": 1,
    "SHADOW_ITEMS": 500,
    "SHADOW_DIM": 16,
    "SHADOW_QUERIES": 10,
    "SHADOW_ROUNDS": 1,
}
SMALL_SERVING = {"ITEMS": 300, "USERS": 30, "ROUNDS": 2, "ROUND_REQUESTS": 64}
# Ports of this test alone, should it start a cluster: not the session's, the defaults, nor those of the
# other tests that start one (tests/stack, tests/cluster), which may run at the same time on this box.
OWN_PORTS = {
    "cluster_opensearch_port": 9311,
    "cluster_opensearch_transport_port": 9411,
    "cluster_redis_port": 7361,
}


@pytest.fixture(scope="module")
def cluster_ports(stack_settings: Settings) -> Iterator[dict[str, object]]:
    """The cluster_* settings of a running cluster topology: the environment's, or one of this test's."""
    if cluster.status(stack_settings).healthy:
        yield {}
        return
    own = stack_settings.model_copy(
        update={**OWN_PORTS, "state_dir": stack_settings.state_dir.parent / "lockstep-bench-cluster"}
    )
    cluster.stop(own)  # a killed run may have left its nodes running (the pid files of this state dir)
    # Each run forms its cluster anew: Redis nodes would otherwise rejoin with stale cluster configs.
    shutil.rmtree(Layout.of(own).cluster_dir, ignore_errors=True)
    # ensure_running would adopt whatever cluster answers on these ports, and stop() could not stop it:
    # refuse to run on another process's nodes.
    for setting, port in own._ports():
        if setting.startswith("cluster_"):
            ensure_free(port, "the cluster benchmark test's cluster", setting)
    began = time.monotonic()
    try:
        services.ensure_running(own.model_copy(update={"topology": "cluster"}))
        print(f"\ncluster topology up in {time.monotonic() - began:.0f}s")
        yield {**OWN_PORTS, "state_dir": own.state_dir}
    finally:
        cluster.stop(own)


def _leftovers(settings: Settings) -> set[str]:
    """Keys and indices under the run's prefix on one topology."""
    client = sync_client(settings)
    keys = {key.decode() for key in client.scan_iter(match=f"{settings.key_prefix}*", count=1000)}
    client.close()
    search = OpenSearch(hosts=settings.opensearch_hosts, timeout=30)
    indices = set(search.indices.get(index=f"{settings.index_prefix}*", expand_wildcards="all"))
    search.close()
    return keys | indices


def test_the_cluster_benchmark_runs_every_side_on_both_topologies(
    settings: Settings, cluster_ports: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SMALL.items():
        monkeypatch.setattr(bench, name, value)
    for name, value in SMALL_SERVING.items():
        monkeypatch.setattr(serving, name, value)
    monkeypatch.setattr(orchestrator, "THROUGHPUT_SECONDS", 0.5)
    single = settings.model_copy(update=cluster_ports)
    figures = bench.run(single)  # raises if 2 serving processes and 1 disagree on a user's items

    assert figures["cluster"]["opensearch"] == bench.cluster_settings(single).opensearch_hosts
    assert len(figures["cluster"]["opensearch"]) == 3 and len(figures["cluster"]["redis"]) == 6
    publish = figures["publish"]
    # Each side published every round; the cluster's commits waited for a replica, the standalone's not.
    assert publish["replicas_waited_for"] == {"single": 0, "cluster": 1}
    assert {side: len(seconds) for side, seconds in publish["seconds"].items()} == {"single": 2, "cluster": 2}
    for call in ("users_get", "items_batch_1000"):
        for side in bench.SIDES:
            assert figures["orchestrator"][call][side]["p50_ms"] > 0
            assert figures["orchestrator"][call][side]["rps"] > 0
    result = figures["serving"]
    assert result["connections"] == ["c8", "c32"]
    for level in result["connections"]:
        for side in ("one", "two"):
            assert result[level][side]["throughput_rps"] > 0
        assert set(result[level]["two_vs_one_median"]) == {"p50", "p99", "throughput"}
    assert result["second_process_cpu_seconds"] > 0  # the round-robin side really reached the second process
    shadow = figures["shadow_build"]
    assert shadow["layout"] == {
        "single": {"shards": 1, "replicas": 0},
        "cluster": {"shards": 3, "replicas": 1},
    }
    for side in bench.SIDES:
        assert len(shadow["seconds"][side]) == 1 and shadow["best_build"][side]["total_seconds"] > 0
        assert shadow["recall_at_10"][side] > 0.5
    # The verdicts are bench.checks' own, one per figure, on the figures reported.
    checks = {check["check"]: check for check in figures["checks"]}
    assert len(checks) == 9
    assert checks["shadow build time, 3 nodes vs 1"]["measured"] == shadow["time_ratio"]
    assert (
        checks["serving throughput at c32, 2 processes vs 1"]["measured"]
        == (result["c32"]["two_vs_one_median"]["throughput"])
    )
    # Nothing of the run is left on either topology.
    assert not _leftovers(single) and not _leftovers(bench.cluster_settings(single))
