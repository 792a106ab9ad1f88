"""Prometheus metrics of one serving app (own registry: nothing global, several apps per test process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    """Every serving metric; `/metrics` renders the registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _children: dict[tuple[int, tuple[str, ...]], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "lockstep_serving_requests", "Requests by route and status.", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "lockstep_serving_request_seconds",
            "Request latency by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.step_latency = Histogram(
            "lockstep_serving_step_seconds",
            "Latency of each step (orchestrator, knn, fallback, ...).",
            ["step"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "lockstep_serving_cache",
            "Cache lookups by cache and outcome (hit/miss).",
            ["cache", "outcome"],
            registry=r,
        )
        self.degraded = Counter(
            "lockstep_serving_degraded", "Degraded responses by reason.", ["reason"], registry=r
        )
        self.items = Counter(
            "lockstep_serving_items", "Items returned by scorer (embedding/fallback).", ["scorer"], registry=r
        )
        self.assignments = Counter(
            "lockstep_serving_assignments",
            "Recommend requests by embedding type and source (request/ab).",
            ["type", "source"],
            registry=r,
        )
        self.dependency_errors = Counter(
            "lockstep_serving_dependency_errors", "Failed dependency calls.", ["dependency"], registry=r
        )

    def child(self, metric: MetricWrapperBase, *values: str) -> Any:
        """`metric.labels(*values)`, memoised: labels() costs ~5 us, and a request touches a dozen."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (serving labels by route and status, not method)."""
        self.child(self.requests, route, str(status)).inc()
        self.child(self.latency, route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
