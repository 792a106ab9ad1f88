"""The verification summary: figures of the rollout under load, and the checks that decide the exit code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from demo.load import LoadStats
from demo.quality import EXACT_TARGET, TypeQuality
from demo.verify import SimilarityReport, mixes_versions, percentile


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
    server_errors: int
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
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        """Plain data, with each type's `advanced` and the overall `ok`."""
        data = asdict(self)
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
) -> Summary:
    """Figures and checks from what the clients saw, the recomputation and the rollouts."""
    outcomes = stats.outcomes
    served = [o for o in outcomes if o.status == 200]
    latencies = [o.latency * 1000 for o in served]
    items = [i for o in served for i in o.items]
    scorers = Counter(i.scorer for i in items)
    mixed = sum(1 for o in served if mixes_versions(o))
    server_errors = stats.count(500, 600)
    client_errors = stats.count(400, 500)
    summary = Summary(
        seconds=round(seconds, 1),
        concurrency=concurrency,
        requests=len(outcomes),
        served=len(served),
        server_errors=server_errors,
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
    )
    checks = [
        Check("requests served", len(served) > 0, f"{len(served)} of {len(outcomes)}"),
        Check("responses mixing versions", mixed == 0, f"{mixed} (must be 0)"),
        Check(
            "server errors",
            server_errors == 0 and stats.transport_errors == 0,
            f"{server_errors} 5xx, {stats.transport_errors} without a response (must be 0)",
        ),
        Check("client errors", client_errors == 0, f"{client_errors} 4xx (the demo sends valid bodies)"),
        Check(
            "similarities recomputed from Redis",
            similarity.items > 0 and not similarity.mismatches,
            f"{similarity.items} items of {similarity.responses} responses, "
            f"{len(similarity.mismatches)} mismatches, max |error| {similarity.max_error:.2e}",
        ),
    ]
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
    return replace(summary, checks=checks)
