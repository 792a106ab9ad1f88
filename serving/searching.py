"""OpenSearch calls through serving's breaker: SearchUnavailable at once while it is open.

A partial answer (ShardsFailed: some shard had no copy that answered) is the cluster answering, not failing:
it does not count towards opening the breaker.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from search.errors import SearchUnavailable, ShardsFailed
from serving.state import AppState

T = TypeVar("T")


async def searched(state: AppState, call: Coroutine[Any, Any, T]) -> T:
    """Await `call` (a state.search coroutine) unless the breaker is open; count its outcome."""
    breaker = state.search_breaker
    if not breaker.allow():
        call.close()
        raise SearchUnavailable("OpenSearch unavailable (circuit open)")
    try:
        result = await call
    except ShardsFailed:
        breaker.success()
        raise
    except SearchUnavailable:
        breaker.failure()
        metrics = state.metrics
        metrics.child(metrics.dependency_errors, "opensearch").inc()
        raise
    breaker.success()
    return result
