"""Prometheus metrics of the indexer (one registry per process, passed in, never a global)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class IndexerMetrics:
    """Docs indexed, cycle duration, completed cycles, freshness (latest published -> in_use) and failures."""

    registry: CollectorRegistry
    docs_indexed: Counter
    cycle_seconds: Histogram
    cycle_step_seconds: Histogram
    freshness_seconds: Gauge
    failures: Counter
    cycles: Counter
    promotions: Counter
    held_back: Gauge
    switch_leftovers: Counter
    live_segments: Gauge
    live_deleted_ratio: Gauge
    live_bytes: Gauge
    expunges: Counter
    merges: Counter
    write_rate_limit: Gauge
    cluster_cpu_percent: Gauge
    backoffs: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> IndexerMetrics:
        """Register the indexer's metrics on `registry` (a fresh one by default)."""
        reg = registry or CollectorRegistry()
        return cls(
            registry=reg,
            docs_indexed=Counter(
                "lockstep_indexer_docs_indexed",
                "Documents written to OpenSearch.",
                ["mode", "type"],
                registry=reg,
            ),
            cycle_seconds=Histogram(
                "lockstep_indexer_cycle_seconds",
                "Duration of one indexer cycle.",
                ["mode"],
                buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
                registry=reg,
            ),
            cycle_step_seconds=Histogram(
                "lockstep_indexer_incremental_step_seconds",
                "Duration of each step of an incremental cycle (read, write, fill, refresh, ack, promote, "
                "maintain): which one a slow cycle spent its time in.",
                ["step"],
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
                registry=reg,
            ),
            freshness_seconds=Gauge(
                "lockstep_indexer_freshness_seconds",
                "Seconds from a version being published to it becoming in_use.",
                ["mode", "type"],
                registry=reg,
            ),
            failures=Counter(
                "lockstep_indexer_failures", "Failed cycles, by reason.", ["mode", "reason"], registry=reg
            ),
            cycles=Counter(
                "lockstep_indexer_cycles",
                "Cycles of `index run` that completed (lock taken, no failure).",
                ["mode"],
                registry=reg,
            ),
            promotions=Counter(
                "lockstep_indexer_promotions", "Versions advanced to in_use.", ["mode", "type"], registry=reg
            ),
            held_back=Gauge(
                "lockstep_indexer_latest_held_back",
                "1 while a type's latest is deliberately not promoted (rolled back from, or not newer).",
                ["mode", "type"],
                registry=reg,
            ),
            live_segments=Gauge(
                "lockstep_indexer_live_segments", "Segments of the live index (primaries).", registry=reg
            ),
            live_deleted_ratio=Gauge(
                "lockstep_indexer_live_deleted_ratio",
                "Deleted documents per document stored in the live index (primaries).",
                registry=reg,
            ),
            live_bytes=Gauge(
                "lockstep_indexer_live_bytes", "Bytes of the live index on disk (primaries).", registry=reg
            ),
            expunges=Counter(
                "lockstep_indexer_live_expunges",
                "Expunges of deleted documents started on the live index (live_max_deleted_ratio passed).",
                registry=reg,
            ),
            merges=Counter(
                "lockstep_indexer_live_merges",
                "Merges of the live index's segments down to live_max_segments per shard, started.",
                registry=reg,
            ),
            write_rate_limit=Gauge(
                "lockstep_indexer_write_rate_limit",
                "Documents per second the indexer may write now (+Inf: no limit): the cap, or less while the "
                "cluster's searches are over the latency budget.",
                registry=reg,
            ),
            cluster_cpu_percent=Gauge(
                "lockstep_indexer_cluster_cpu_percent",
                "CPU use of the busiest OpenSearch node at the throttle's last reading (with a budget).",
                registry=reg,
            ),
            backoffs=Counter(
                "lockstep_indexer_backoffs",
                "Times the indexer halved its write rate: a node's CPU use over the budget.",
                registry=reg,
            ),
            switch_leftovers=Counter(
                "lockstep_indexer_switch_leftovers_removed",
                "What a mode switch left, removed after the grace: shadow indices, or live docs cleared.",
                ["type", "kind"],
                registry=reg,
            ),
        )
