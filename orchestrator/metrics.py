"""Prometheus metrics of one app instance (its own registry: two apps in one process never collide)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.cache import VectorCache
from orchestrator.catalog import Catalog


class Metrics:
    """Request counts and latency by route and status, Redis errors; cache and versions via a collector."""

    def __init__(self, cache: VectorCache) -> None:
        self.catalog: Catalog | None = None  # set by the lifespan once Redis is wired
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "lockstep_orchestrator_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lockstep_orchestrator_request_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "lockstep_orchestrator_redis_errors", "Redis calls that failed.", registry=self.registry
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.in_use: dict[str, str] = {}  # last in_use seen per type, for the info gauge
        self.registry.register(_StateCollector(cache, self))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one response; label children are memoised (labels() costs more than inc())."""
        children = self._children.get((route, method, status))
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class _StateCollector(Collector):
    """Reads cache counters and versions at scrape time (no bookkeeping on the hot path)."""

    def __init__(self, cache: VectorCache, metrics: Metrics) -> None:
        self.cache = cache
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        hits = CounterMetricFamily("lockstep_orchestrator_cache_hits", "Vector cache hits.")
        hits.add_metric([], self.cache.hits)
        misses = CounterMetricFamily("lockstep_orchestrator_cache_misses", "Vector cache misses.")
        misses.add_metric([], self.cache.misses)
        size = GaugeMetricFamily("lockstep_orchestrator_cache_entries", "Vectors held in the cache.")
        size.add_metric([], len(self.cache))
        info = GaugeMetricFamily(
            "lockstep_orchestrator_version_info",
            "1 for each type's latest (as polled) and in_use (as last read) version.",
            labels=["type", "which", "version"],
        )
        catalog = self.metrics.catalog
        for name, entry in catalog.types.items() if catalog else ():
            if entry.latest is not None:
                info.add_metric([name, "latest", entry.latest.version], 1)
        for name, version in self.metrics.in_use.items():
            info.add_metric([name, "in_use", version], 1)
        unreadable = GaugeMetricFamily(
            "lockstep_orchestrator_unreadable_manifests",
            "Published versions whose manifest does not match the contract (skipped: they serve nobody).",
            labels=["type"],
        )
        per_type: dict[str, int] = {}
        for name, _ in catalog.store.unreadable if catalog else ():
            per_type[name] = per_type.get(name, 0) + 1
        for name, count in sorted(per_type.items()):
            unreadable.add_metric([name], count)
        yield from (hits, misses, size, info, unreadable)
