"""How fast a build writes: a fixed cap, and below it a rate that backs off while the cluster's searches
slow down.

OpenSearch indexes (HNSW insertion) as fast as it is fed, and on nodes that also answer serving's queries
that CPU is serving's latency. A cap alone is a guess made before the build; the latency budget measures
what the build does to searches while it runs: every `interval` the mean time of the cluster's searches
(node stats, every node, every index: serving's queries) is compared with the budget. Above it the rate is
halved; within it, raised by a quarter, up to the cap. No searches in an interval: nothing to protect, so
the rate rises.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from contract.settings import IndexerSettings
from indexer.metrics import IndexerMetrics
from search.port import SearchEngine
from search.results import SearchTotals

# A build always progresses, however slow the searches are: it is not the only thing that can slow them.
MIN_DOCS_PER_SECOND = 50.0
BACK_OFF = 0.5
RAISE = 1.25


class Throttle:
    """Paces a build's documents: at most `cap` per second (0: no cap), and within `budget_ms` of mean
    search time (0: no budget)."""

    def __init__(
        self,
        search: SearchEngine,
        cap: float = 0,
        budget_ms: float = 0,
        interval: float = 1.0,
        metrics: IndexerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cap < 0:
            raise ValueError(f"docs_per_second={cap} must be 0 (no cap) or more")
        if budget_ms < 0:
            raise ValueError(f"budget_ms={budget_ms} must be 0 (no budget) or more")
        self._search = search
        self.cap = cap or math.inf
        self.budget_ms = budget_ms
        self.interval = interval
        self._metrics = metrics
        self._clock = clock
        self.rate = self.cap  # documents per second allowed now
        self.search_ms: float | None = None  # the last interval's mean search time, once measured
        self._limiter = _limiter(self.rate)
        self._sent = 0
        self._last: tuple[float, SearchTotals, int] | None = None  # when, the nodes' totals, documents sent
        if metrics is not None:
            metrics.write_rate_limit.set(self.rate)

    @classmethod
    def of(cls, search: SearchEngine, settings: IndexerSettings, metrics: IndexerMetrics) -> Throttle:
        """The throttle the settings configure."""
        return cls(
            search,
            settings.indexer_max_docs_per_second,
            settings.indexer_search_latency_budget_ms,
            settings.indexer_throttle_interval_seconds,
            metrics,
        )

    async def acquire(self, docs: int) -> None:
        """Wait until `docs` more documents may be sent."""
        if self.budget_ms:
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
        totals = await self._search.search_totals()
        if self._last is not None:
            began, before, sent = self._last
            queries = totals.queries - before.queries
            if queries > 0:  # (negative: a node restarted and its counters with it; no reading)
                self.search_ms = (totals.millis - before.millis) / queries
                if self._metrics is not None:
                    self._metrics.cluster_search_ms.set(self.search_ms)
            over = queries > 0 and self.search_ms is not None and self.search_ms > self.budget_ms
            sent_rate = (self._sent - sent) / max(now - began, 1e-9)
            rate = next_rate(self.rate, self.cap, over, sent_rate)
            if rate != self.rate:
                await self._set(rate)
            if over and self._metrics is not None:
                self._metrics.backoffs.inc()
        self._last = (now, totals, self._sent)

    async def _set(self, rate: float) -> None:
        self.rate = rate
        if self._metrics is not None:
            self._metrics.write_rate_limit.set(rate)
        self._limiter = _limiter(rate)
        if self._limiter is not None:
            # A new bucket starts empty, which would let a second's worth through at once: start it full.
            await self._limiter.acquire(self._limiter.max_rate)


def next_rate(rate: float, cap: float, over_budget: bool, sent_rate: float) -> float:
    """The rate after an interval: half of what was sent (or allowed, if less) when the searches were over
    the budget, never under MIN_DOCS_PER_SECOND; else a quarter more, up to the cap."""
    if over_budget:
        return max(MIN_DOCS_PER_SECOND, min(rate, sent_rate) * BACK_OFF)
    return min(cap, rate * RAISE)


def _limiter(rate: float) -> AsyncLimiter | None:
    return None if math.isinf(rate) else AsyncLimiter(rate, time_period=1)
