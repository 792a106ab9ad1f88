"""Prometheus metrics of one serving app (own registry: nothing global, several apps per test process)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LoopHistogram:
    """A labelled histogram counted in plain lists, rendered as Prometheus's own when /metrics is read.

    prometheus_client's Histogram.observe checks its state and takes a lock for the sum and another for the
    bucket: ~10k instructions, and serving observes four a request. Serving observes and renders on its one
    event loop thread, so nothing needs the locks (`bench instructions`, bench/README.md: -35k a request).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(buckets)
        self._children: dict[tuple[str, ...], _Counts] = {}
        registry.register(self)

    def labels(self, *values: str) -> _Counts:
        """The counts of one label set (made on first use)."""
        counts = self._children.get(values)
        if counts is None:
            counts = self._children[values] = _Counts(self._bounds)
        return counts

    def collect(self) -> Iterator[Metric]:
        """The histogram family, buckets cumulative as the exposition format wants them."""
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        edges = [*map(str, self._bounds), "+Inf"]  # as prometheus_client writes `le` for these bounds
        for values, counts in self._children.items():
            cumulative = zip(edges, accumulate(counts.buckets), strict=True)
            family.add_metric(list(values), list(cumulative), counts.sum)
        yield family


class LoopCounter:
    """A labelled counter in plain floats, rendered as Prometheus's own Counter when /metrics is read.

    For the reason LoopHistogram gives: prometheus_client's Counter.inc checks its state and takes a lock,
    and serving counts four times a request on its one event loop thread (-21k instructions a request).
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry):
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _Count] = {}
        registry.register(self)

    def labels(self, *values: str, **named: str) -> _Count:
        """The count of one label set (made on first use); values in order, or by label name."""
        key = values or tuple(named[label] for label in self._labelnames)
        count = self._children.get(key)
        if count is None:
            count = self._children[key] = _Count()
        return count

    def collect(self) -> Iterator[Metric]:
        """The counter family (`<name>_total` samples)."""
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for values, count in self._children.items():
            family.add_metric(list(values), count.value)
        yield family


class _Count:
    """One label set's count."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (at least 0: a counter only goes up)."""
        if amount < 0:
            raise ValueError(f"a counter only goes up; got {amount}")
        self.value += amount


class _Counts:
    """One label set's observations per bucket (the last one +Inf) and their sum."""

    __slots__ = ("_bounds", "buckets", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        """Count one observation in the first bucket whose bound is at least `amount`."""
        self.buckets[bisect_left(self._bounds, amount)] += 1
        self.sum += amount


@dataclass
class Metrics:
    """Every serving metric; `/metrics` renders the registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds
        GCCollector(registry=r)  # python_gc_collections_total by generation (serving.main sets its pace)
        self.requests = LoopCounter(
            "lockstep_serving_requests", "Requests by route and status.", ["route", "status"], r
        )
        self.latency = LoopHistogram(
            "lockstep_serving_request_seconds", "Request latency by route.", ["route"], _LATENCY_BUCKETS, r
        )
        self.step_latency = LoopHistogram(
            "lockstep_serving_step_seconds",
            "Latency of each step (orchestrator, knn, fallback, ...).",
            ["step"],
            _LATENCY_BUCKETS,
            r,
        )
        self.cache = LoopCounter(
            "lockstep_serving_cache",
            "Cache lookups by cache and outcome (hit/miss).",
            ["cache", "outcome"],
            r,
        )
        self.degraded = LoopCounter(
            "lockstep_serving_degraded", "Degraded responses by reason.", ["reason"], r
        )
        self.items = LoopCounter(
            "lockstep_serving_items", "Items returned by scorer (embedding/fallback).", ["scorer"], r
        )
        self.assignments = LoopCounter(
            "lockstep_serving_assignments",
            "Recommend requests by embedding type and source (request/ab).",
            ["type", "source"],
            r,
        )
        self.dependency_errors = LoopCounter(
            "lockstep_serving_dependency_errors", "Failed dependency calls.", ["dependency"], r
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (serving labels by route and status, not method)."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
