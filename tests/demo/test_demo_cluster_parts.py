"""The cluster demo's pure parts: its deployment, process plan, recovery windows and in-use staleness."""

from __future__ import annotations

import json

from contract.settings import Settings
from demo.deployment import cluster, single
from demo.faults import RECOVERY_RUN, Fault
from demo.load import LoadStats, Outcome
from demo.plan import process_names, service_specs
from demo.recovery import recoveries
from demo.staleness import Change, staleness
from demo.summary import ClusterFindings, summarize
from demo.verify import SimilarityReport

OLD, NEW = "v1", "v2"


def test_cluster_deployment_points_every_process_at_the_cluster_and_replicates_indexes() -> None:
    settings = Settings(cluster_opensearch_port=9261, cluster_redis_port=7301)
    deployment = cluster(settings, {"LOCKSTEP_SHADOW_REPLICAS": "2"}, replicas=3)
    env = deployment.env
    assert env["LOCKSTEP_OPENSEARCH_URL"].split(",") == [f"http://127.0.0.1:{p}" for p in (9261, 9262, 9263)]
    assert env["LOCKSTEP_REDIS_TOPOLOGY"] == "cluster" and env["LOCKSTEP_TOPOLOGY"] == "cluster"
    assert json.loads(env["LOCKSTEP_REDIS_CLUSTER_NODES"]) == [f"127.0.0.1:{7301 + i}" for i in range(6)]
    assert env["LOCKSTEP_REDIS_WAIT_REPLICAS"] == "1" and env["LOCKSTEP_LIVE_REPLICAS"] == "1"
    assert "LOCKSTEP_SHADOW_REPLICAS" not in env  # the caller's own choice wins
    effective = deployment.settings(settings)
    assert effective.redis_topology == "cluster" and effective.redis_replicas_to_wait == 1
    assert effective.opensearch_hosts == env["LOCKSTEP_OPENSEARCH_URL"].split(",")
    assert len(deployment.serving_urls) == len(deployment.orchestrator_urls) == 3
    assert process_names(deployment)[:6] == [
        "orchestrator-1",
        "orchestrator-2",
        "orchestrator-3",
        "serving-1",
        "serving-2",
        "serving-3",
    ]
    specs = {spec.name: dict(spec.env) for spec in service_specs(deployment, ["lockstep"])}
    assert specs["serving-2"]["LOCKSTEP_ORCHESTRATOR_URL"] == deployment.orchestrator_urls[1]
    assert specs["serving-2"]["LOCKSTEP_SERVING_URL"] == deployment.serving_urls[1]
    # The single demo keeps its names and URLs.
    assert process_names(single(settings))[:2] == ["orchestrator", "serving"]


def _served(at: float, server: int, version: str | None = NEW, **extra: object) -> Outcome:
    return Outcome(at, 0.01, 200, {}, embedding_type="t", version=version, server=server, **extra)  # type: ignore[arg-type]


def test_recovery_starts_the_first_run_of_full_answers_after_the_kill() -> None:
    stats = LoadStats(began_wall=1000.0)
    run = [_served(12.0 + n / 100, 1) for n in range(RECOVERY_RUN)]
    stats.outcomes = [
        _served(0.5, 0),
        _served(10.2, 0),
        Outcome(10.4, 0.01, 503, {}, retry_after=True),
        _served(11.0, 1, degraded=True),
        Outcome(11.5, 0.01, 500, {}),
        *run,
        _served(13.0, 1, degraded=True),  # a stray one after recovery does not count against it
        _served(21.0, 0),  # the next fault's window
    ]
    faults = [Fault("opensearch", "os-1", 1, "", 1010.0), Fault("redis", "redis-1", 2, "", 1020.0)]
    first, second = recoveries(stats, faults)
    assert (first.requests, first.degraded, first.unavailable, first.errors) == (RECOVERY_RUN + 5, 1, 1, 1)
    assert first.first_ok_seconds == 0.2 and first.recovered_seconds == 2.0
    assert second.requests == 1 and second.recovered_seconds == second.first_ok_seconds == 1.0


def test_staleness_is_the_latest_old_answer_sent_after_the_change_per_replica() -> None:
    stats = LoadStats(began_wall=1000.0)
    stats.outcomes = [
        _served(4.0, 0, OLD),
        _served(5.3, 0, OLD),
        _served(5.6, 0, OLD, degraded=True),  # degraded answers may use the last known TypeInfo
        _served(5.5, 0),
        _served(5.1, 1),
    ]
    found = staleness(stats, [Change("t", OLD, NEW, 1005.0)], ["a", "b"])
    by_server = {row.server: row for row in found}
    assert by_server["a"].stale_seconds == 0.3 and by_server["a"].old_after_change == 1
    assert by_server["b"].stale_seconds == 0.0 and by_server["b"].new_answers == 1
    summary = summarize(
        stats,
        10.0,
        2,
        SimilarityReport(responses=1, items=1),
        [],
        [],
        ["a", "b"],
        ClusterFindings(["a", "b"], ["o"], [], "none killed", [], found, staleness_bound=0.2),
    )
    checks = {c.name: c.ok for c in summary.checks}
    assert checks["in-use staleness across serving replicas"] is False  # 0.3 s > 0.2 s
    assert checks["faults injected"] is False
    assert checks["load spread over the serving replicas"] is True
