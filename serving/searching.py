"""OpenSearch calls through serving's breaker: SearchUnavailable at once while it is open.

A partial answer (ShardsFailed: some shard had no copy that answered) is the cluster answering, not failing:
it does not count towards opening the breaker; an OpenSearch 5xx does, and is answered as an outage. A call
gets at most what is left of the request's budget (service.admission.remaining); running out of it is
SearchUnavailable, a timeout like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from search.errors import SearchFailed, SearchUnavailable, ShardsFailed
from service.admission import remaining
from serving.state import AppState

T = TypeVar("T")


async def searched(state: AppState, call: Coroutine[Any, Any, T]) -> T:
    """Await `call` (a state.search coroutine) unless the breaker is open; count its outcome."""
    breaker = state.search_breaker
    if not breaker.allow():
        call.close()
        raise SearchUnavailable("OpenSearch unavailable (circuit open)")
    budget = remaining()
    if budget is not None and budget <= 0:  # spent before this call: not OpenSearch's doing
        call.close()
        raise SearchUnavailable("OpenSearch not called: the request's time budget ran out")
    try:
        async with asyncio.timeout(budget):
            result = await call
    except ShardsFailed:
        breaker.success()
        raise
    except (SearchUnavailable, SearchFailed, TimeoutError) as exc:
        breaker.failure()
        metrics = state.metrics
        metrics.dependency_errors.labels("opensearch").inc()
        if isinstance(exc, TimeoutError):
            raise SearchUnavailable("OpenSearch unavailable: the request's budget ran out") from exc
        if isinstance(exc, SearchFailed):
            # A 5xx of OpenSearch's own (seen as a node is SIGKILLed mid-search) is its failure, not ours:
            # answered like an outage (degraded, or 503 + Retry-After), never as our 500.
            raise SearchUnavailable(f"OpenSearch failed: {exc}") from exc
        raise
    breaker.success()
    return result
