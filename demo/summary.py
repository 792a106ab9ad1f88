"""The verification summary: figures of the rollout under load, and the checks that decide the exit code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from demo.faults import Fault
from demo.load import LoadStats
from demo.quality import EXACT_TARGET, TypeQuality
from demo.recovery import Recovery
from demo.staleness import ReplicaStaleness
from demo.verify import PartitionReport, SimilarityReport, mixes_versions, percentile

FAULT_BOUND_SECONDS = 60.0  # promotion and recovery after a killed node must each take less


@dataclass(frozen=True)
class ClusterFindings:
    """What only the cluster demo has: replicas, the faults, recovery and staleness across replicas."""

    servers: list[str]  # the serving replicas' URLs, in the load's round-robin order
    orchestrators: list[str]
    faults: list[Fault]
    fault_error: str | None
    recoveries: list[Recovery]
    staleness: list[ReplicaStaleness]
    staleness_bound: float  # serving staleness + its orchestrator timeout (see demo.staleness)

    def as_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "servers": self.servers,
            "orchestrators": self.orchestrators,
            "faults": [f.as_json() for f in self.faults],
            "fault_error": self.fault_error,
            "recoveries": [r.as_json() for r in self.recoveries],
            "staleness": [s.as_json() for s in self.staleness],
            "staleness_bound": self.staleness_bound,
            "staleness_max": max((s.stale_seconds for s in self.staleness), default=None),
        }


@dataclass(frozen=True)
class TypeRollout:
    """One type's rollout: in_use before and after, and how long publish -> in_use took."""

    type_name: str
    mode: str
    before: str | None
    target: str
    after: str | None
    freshness_seconds: float | None  # manifest created_at -> audit entry moving in_use to target
    served: dict[str, int]  # responses per version during the load

    @property
    def advanced(self) -> bool:
        """in_use moved to the rolled-out version."""
        return self.after == self.target and self.before != self.target


@dataclass(frozen=True)
class Check:
    """One pass/fail line of the summary."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Summary:
    """Everything the demo prints at the end (and writes as JSON)."""

    seconds: float
    concurrency: int
    requests: int
    served: int
    server_errors: int  # 5xx other than 503 with Retry-After
    unavailable: int  # 503 with Retry-After: a dependency down, the client told when to retry
    client_errors: int
    transport_errors: int
    mixed: int
    p50_ms: float
    p99_ms: float
    fallback_share: float
    degraded_share: float
    similarity_responses: int
    similarity_items: int
    similarity_mismatches: list[str]
    similarity_max_error: float
    similarity_skipped: int
    types: list[TypeRollout]
    quality: list[TypeQuality] = field(default_factory=list)  # measured before the rollout
    scorers: dict[str, int] = field(default_factory=dict)
    per_server: dict[str, int] = field(default_factory=dict)  # requests per serving replica
    cluster: ClusterFindings | None = None
    # Requests that named partitions (None: the example's requests name none) and items from elsewhere.
    partition_responses: int | None = None
    partition_items: int | None = None
    partition_violations: int | None = None
    partition_examples: list[str] = field(default_factory=list)  # the first violations, for the log
    # p99 while the new versions were published and indexed (first publish -> last in_use move), and after
    # (the same load on a settled box): what a rollout costs serving. None when a window saw no request.
    p99_rollout_ms: float | None = None
    p99_settled_ms: float | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        """Plain data, with each type's `advanced` and the overall `ok`."""
        data = asdict(self)
        data["cluster"] = self.cluster.as_json() if self.cluster else None
        for row, rollout in zip(data["types"], self.types, strict=True):
            row["advanced"] = rollout.advanced
        data["ok"] = self.ok
        return data


def summarize(
    stats: LoadStats,
    seconds: float,
    concurrency: int,
    similarity: SimilarityReport,
    rollouts: list[TypeRollout],
    quality: Sequence[TypeQuality],
    servers: Sequence[str] = (),
    cluster: ClusterFindings | None = None,
    partitions: PartitionReport | None = None,
    rollout_window: tuple[float, float] | None = None,
) -> Summary:
    """Figures and checks from what the clients saw, the recomputation, the rollouts (and the faults).

    `rollout_window`: from the first publish of the new versions to the last in_use move, in seconds
    after the load began (None: nothing moved)."""
    outcomes = stats.outcomes
    served = [o for o in outcomes if o.status == 200]
    latencies = [o.latency * 1000 for o in served]
    items = [i for o in served for i in o.items]
    scorers = Counter(i.scorer for i in items)
    mixed = sum(1 for o in served if mixes_versions(o))
    unavailable = sum(1 for o in outcomes if o.status == 503 and o.retry_after)
    server_errors = stats.count(500, 600) - unavailable
    client_errors = stats.count(400, 500)
    during = after = None
    if rollout_window is not None:
        began, ended = rollout_window
        during = _p99([o.latency * 1000 for o in served if began <= o.at < ended])
        after = _p99([o.latency * 1000 for o in served if o.at >= ended])
    summary = Summary(
        seconds=round(seconds, 1),
        concurrency=concurrency,
        requests=len(outcomes),
        served=len(served),
        server_errors=server_errors,
        unavailable=unavailable,
        client_errors=client_errors,
        transport_errors=stats.transport_errors,
        mixed=mixed,
        p50_ms=round(percentile(latencies, 0.50), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        fallback_share=round(scorers["fallback"] / len(items), 4) if items else 0.0,
        degraded_share=round(sum(1 for o in served if o.degraded) / len(served), 4) if served else 0.0,
        similarity_responses=similarity.responses,
        similarity_items=similarity.items,
        similarity_mismatches=similarity.mismatches[:20],
        similarity_max_error=similarity.max_error,
        similarity_skipped=len(similarity.skipped),
        types=rollouts,
        quality=list(quality),
        scorers=dict(scorers),
        per_server={url: sum(1 for o in outcomes if o.server == n) for n, url in enumerate(servers)},
        cluster=cluster,
        partition_responses=None if partitions is None else partitions.responses,
        partition_items=None if partitions is None else partitions.items,
        partition_violations=None if partitions is None else len(partitions.violations),
        partition_examples=[] if partitions is None else partitions.violations[:20],
        p99_rollout_ms=during,
        p99_settled_ms=after,
    )
    checks = [
        Check("requests served", len(served) > 0, f"{len(served)} of {len(outcomes)}"),
        Check("responses mixing versions", mixed == 0, f"{mixed} (must be 0)"),
        Check(
            "server errors",
            server_errors == 0 and stats.transport_errors == 0,
            f"{server_errors} 5xx other than 503 + Retry-After, {stats.transport_errors} without a response "
            "(must be 0)",
        ),
        Check(
            "503 with Retry-After",
            unavailable == 0 or cluster is not None,
            f"{unavailable}"
            + (" (allowed while a killed node's copies take over)" if cluster else " (no fault: must be 0)"),
        ),
        Check("client errors", client_errors == 0, f"{client_errors} 4xx (the demo sends valid bodies)"),
        Check(
            "similarities recomputed from Redis",
            similarity.items > 0 and not similarity.mismatches,
            f"{similarity.items} items of {similarity.responses} responses, "
            f"{len(similarity.mismatches)} mismatches, max |error| {similarity.max_error:.2e}",
        ),
    ]
    if partitions is not None:
        checks.append(
            Check(
                "answers within the partitions named",
                partitions.items > 0 and not partitions.violations,
                f"{len(partitions.violations)} of {partitions.items} items in {partitions.responses} "
                "partition-scoped responses from other partitions (must be 0)",
            )
        )
    for rollout in rollouts:
        checks.append(
            Check(
                f"{rollout.type_name} in_use advanced",
                rollout.advanced,
                f"{rollout.before} -> {rollout.after}",
            )
        )
    for measured in quality:
        share = measured.exact_top10_share
        recall = "" if measured.recall is None else f", recall@10 {measured.recall:.3f} on held-out ratings"
        checks.append(
            Check(
                f"{measured.type_name} served top-10 = exact top-10",
                measured.ok,
                f"{'-' if share is None else f'{share:.1%}'} of {measured.users} users "
                f"(at least {EXACT_TARGET:.0%}), {measured.failed_requests} failed requests{recall}",
            )
        )
    if cluster is not None:
        checks += cluster_checks(cluster, summary.per_server)
    return replace(summary, checks=checks)


def _p99(latencies: Sequence[float]) -> float | None:
    return round(percentile(latencies, 0.99), 1) if latencies else None


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def cluster_checks(cluster: ClusterFindings, per_server: dict[str, int]) -> list[Check]:
    """Replicas all served, each fault injected and recovered, in-use staleness within its bound."""
    checks = [
        Check(
            "load spread over the serving replicas",
            len(per_server) >= 2 and all(n > 0 for n in per_server.values()),
            ", ".join(f"{url}: {n}" for url, n in per_server.items()),
        ),
        Check(
            "faults injected",
            cluster.fault_error is None and len(cluster.faults) == 2,
            cluster.fault_error
            or ", ".join(f"SIGKILL {f.service} {f.node} (pid {f.pid})" for f in cluster.faults),
        ),
    ]
    recovered = {r.node: r for r in cluster.recoveries}
    bound = FAULT_BOUND_SECONDS
    for fault in cluster.faults:
        recovery = recovered.get(fault.node)
        promotion = fault.promotion_seconds
        back = recovery.recovered_seconds if recovery else None
        checks.append(
            Check(
                f"{fault.node} killed: copies took over, service recovered",
                promotion is not None and promotion <= bound and back is not None and back <= bound,
                f"promotion {_seconds(promotion)}, recovered {_seconds(back)} (each at most {bound:.0f} s)",
            )
        )
        checks.append(
            Check(
                f"{fault.node} started again",
                fault.rejoined_at is not None,
                f"back {_seconds(fault.rejoin_seconds)} after the kill "
                "(Redis: a replica again; OpenSearch: a member, cluster green)",
            )
        )
    worst = max((s.stale_seconds for s in cluster.staleness), default=0.0)
    unswitched = sorted({f"{s.server} ({s.type_name})" for s in cluster.staleness if s.new_answers == 0})
    checks.append(
        Check(
            "in-use staleness across serving replicas",
            bool(cluster.staleness) and worst <= cluster.staleness_bound and not unswitched,
            f"max {worst:.2f} s over {len({s.server for s in cluster.staleness})} replicas "
            f"(bound {cluster.staleness_bound:.1f} s)"
            + (f"; never answered the new version: {', '.join(unswitched)}" if unswitched else ""),
        )
    )
    return checks
