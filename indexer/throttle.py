"""How fast a build writes: a fixed cap, and below it a rate that backs off while the cluster is busy.

OpenSearch indexes (HNSW insertion) as fast as it is fed, and on nodes that also answer serving's queries
that CPU is serving's latency. A cap alone is a guess made before the build; the budget measures what the
build does while it runs. Every `interval` the busiest node's CPU use (node stats) is compared with
`cpu_budget` (percent): over it, the rate is halved; within it, raised by a quarter, up to the cap.

Not the nodes' mean search time: it counts a search's query phase, not its wait for a CPU, and it barely
moved in builds that doubled serving's p99 (make bench: rollout).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from contract.settings import IndexerSettings
from indexer.metrics import IndexerMetrics
from search.port import SearchEngine

# A build always progresses, however busy the cluster: it is not the only thing that can keep it busy.
MIN_DOCS_PER_SECOND = 50.0
BACK_OFF = 0.5
RAISE = 1.25


class Throttle:
    """Paces a build's documents: at most `cap` per second (0: no cap), backing off while a node's CPU use
    passes `cpu_budget` percent (0: no budget)."""

    def __init__(
        self,
        search: SearchEngine,
        cap: float = 0,
        cpu_budget: float = 0,
        interval: float = 1.0,
        metrics: IndexerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cap < 0:
            raise ValueError(f"docs_per_second={cap} must be 0 (no cap) or more")
        if not 0 <= cpu_budget <= 100:
            raise ValueError(f"cpu_budget={cpu_budget} must be a percentage (0: no budget)")
        self._search = search
        self.cap = cap or math.inf
        self.cpu_budget = cpu_budget
        self.interval = interval
        self._metrics = metrics
        self._clock = clock
        self.rate = self.cap  # documents per second allowed now
        self.cpu_percent: int | None = None  # the busiest node's CPU use at the last reading
        self._limiter = _limiter(self.rate)
        self._sent = 0
        self._last: tuple[float, int] | None = None  # when the CPU was last read, documents sent by then
        if metrics is not None:
            metrics.write_rate_limit.set(self.rate)

    @classmethod
    def of(cls, search: SearchEngine, settings: IndexerSettings, metrics: IndexerMetrics) -> Throttle:
        """The throttle the settings configure."""
        return cls(
            search,
            settings.indexer_max_docs_per_second,
            settings.indexer_cpu_budget_percent,
            settings.indexer_throttle_interval_seconds,
            metrics,
        )

    async def acquire(self, docs: int) -> None:
        """Wait until `docs` more documents may be sent."""
        if self.cpu_budget:
            await self._adjust()
        if self._limiter is not None:
            # The bucket holds one second of documents: a chunk larger than that is paid for in pieces.
            left = float(docs)
            while left > 0:
                piece = min(left, self._limiter.max_rate)
                await self._limiter.acquire(piece)
                left -= piece
        self._sent += docs

    async def _adjust(self) -> None:
        now = self._clock()
        if self._last is not None and now - self._last[0] < self.interval:
            return
        self.cpu_percent = await self._search.node_cpu_percent()
        if self._metrics is not None:
            self._metrics.cluster_cpu_percent.set(self.cpu_percent)
        if self._last is not None:
            began, sent = self._last
            over = self.cpu_percent > self.cpu_budget
            sent_rate = (self._sent - sent) / max(now - began, 1e-9)
            rate = next_rate(self.rate, self.cap, over, sent_rate)
            if rate != self.rate:
                await self._set(rate)
            if over and self._metrics is not None:
                self._metrics.backoffs.inc()
        self._last = (now, self._sent)

    async def _set(self, rate: float) -> None:
        self.rate = rate
        if self._metrics is not None:
            self._metrics.write_rate_limit.set(rate)
        self._limiter = _limiter(rate)
        if self._limiter is not None:
            # A new bucket starts empty, which would let a second's worth through at once: start it full.
            await self._limiter.acquire(self._limiter.max_rate)


def next_rate(rate: float, cap: float, over_budget: bool, sent_rate: float) -> float:
    """The rate after an interval: half of what was sent (or allowed, if less) when the cluster was over
    its budget, never under MIN_DOCS_PER_SECOND; else a quarter more, up to the cap."""
    if over_budget:
        return max(MIN_DOCS_PER_SECOND, min(rate, sent_rate) * BACK_OFF)
    return min(cap, rate * RAISE)


def _limiter(rate: float) -> AsyncLimiter | None:
    return None if math.isinf(rate) else AsyncLimiter(rate, time_period=1)
