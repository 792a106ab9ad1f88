"""Answers while a dependency is down: the popular list under the same filters, never the version's k-NN."""

from __future__ import annotations

import time

from contract.indexing import IndexedLocation
from search.errors import SearchUnavailable
from serving.context import Outcome, RequestContext
from serving.errors import Unavailable
from serving.merge import only
from serving.popularity import popular, remembered


async def orchestrator_down(ctx: RequestContext, location: IndexedLocation | None, trouble: str) -> Outcome:
    """No user vector to be had: the popular list of the last known in-use index."""
    ctx.state.metrics.degraded.labels(reason="orchestrator").inc()
    if location is None:
        raise Unavailable(f"embedding_type: {trouble}, and no index of {ctx.type_name!r} is known")
    started = time.perf_counter()
    try:
        hits = await popular(ctx, location.index)
    except SearchUnavailable as exc:
        return search_down(ctx, f"{trouble}; {exc}")
    ctx.timer.add("popular", started)
    ranked = only(hits, "popular", None, trouble, ctx.request.k)
    return Outcome(ctx.type_name, None, ranked, location, trouble, excluded=len(ctx.excluded))


def search_down(ctx: RequestContext, trouble: str) -> Outcome:
    """OpenSearch is down: the remembered popular list for these filters, or 503."""
    ctx.state.metrics.degraded.labels(reason="opensearch").inc()
    hits = remembered(ctx)
    if hits is None:
        raise Unavailable(f"search unavailable and no popular list cached for these filters: {trouble}")
    reason = f"search unavailable, cached popular list: {trouble}"
    ranked = only(hits, "popular", None, reason, ctx.request.k)
    return Outcome(ctx.type_name, None, ranked, None, reason, excluded=len(ctx.excluded))


async def without_orchestrator(ctx: RequestContext) -> Outcome | None:
    """Stage: the type could not be read fresh, so no user vector can be trusted: the popular list."""
    if ctx.orchestrator_trouble is None:
        return None
    return await orchestrator_down(ctx, ctx.in_use_location, ctx.orchestrator_trouble)
