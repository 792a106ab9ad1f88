"""The k-NN stage: the user's version's nearest items, filled by the fallback scorer where they run out."""

from __future__ import annotations

import time

from contract.indexing import IndexedLocation
from contract.wire import TypeInfo, UserVector
from search.errors import IndexNotFound, SearchUnavailable, ShardsFailed, VersionMismatch
from serving.context import Outcome, RequestContext
from serving.degraded import search_down
from serving.errors import Unavailable
from serving.fallback import fallback_items
from serving.knn import knn_query
from serving.merge import fill
from serving.popularity import keep_warm
from serving.resolution import location
from serving.results import result_key
from serving.searching import searched
from serving.user_vectors import fetch_vector


async def versioned(ctx: RequestContext, info: TypeInfo, loc: IndexedLocation, vector: UserVector) -> Outcome:
    """k-NN over the vector's version, then fallback items to fill what the version's vectors could not.

    When some shard of the index had no copy that answered, the items the other shards found are served,
    never as a whole answer: the outcome is degraded, its reason naming the shards.
    """
    state, request, k = ctx.state, ctx.request, ctx.request.k
    query = knn_query(
        state.settings,
        loc,
        info.type,
        vector.vector,
        k,
        filters=request.filters,
        exclude=ctx.excluded,
    )
    started = time.perf_counter()
    partial = None
    try:
        search = state.search.exact(query) if request.exact else state.search.knn(query)
        hits = await searched(state, search)
    except ShardsFailed as exc:
        hits, partial = list(exc.partial), str(exc)
    except VersionMismatch as exc:
        # The invariant check fired: never answer with those hits.
        raise Unavailable(f"version check failed: {exc}") from exc
    ctx.timer.add("exact" if request.exact else "knn", started)
    fallback = []
    reason = None
    if len(hits) < k:
        reason = f"no vector of version {vector.version}: fewer than k items with one matched the filters"
        started = time.perf_counter()
        try:
            fallback = await fallback_items(ctx, loc, k - len(hits))
        except ShardsFailed as exc:
            fallback, partial = list(exc.partial), partial or str(exc)
        ctx.timer.add("fallback", started)
    keep_warm(ctx, loc.index)
    if partial is not None:
        state.metrics.degraded.labels(reason="partial").inc()
    ranked = fill(hits, fallback, k, vector.version, reason)
    return Outcome(ctx.type_name, vector.version, ranked, loc, degraded_reason=partial)


async def nearest_items(ctx: RequestContext) -> Outcome:
    """Stage: the answer at the index of the vector's own version (re-resolved once if that index is gone)."""
    state, vector, in_use_loc = ctx.state, ctx.vector, ctx.in_use_location
    assert vector is not None and in_use_loc is not None, "the vector stage ran"
    same = vector.version == in_use_loc.version
    loc = in_use_loc if same else await location(state, ctx.type_name, vector.version)
    try:
        outcome = await versioned(ctx, ctx.info, loc, vector)
    except IndexNotFound:
        # The index of that version went away (a shadow index dropped after in_use moved on): re-resolve once.
        state.user_vectors.clear()
        known = await state.directory.refresh(ctx.type_name)
        vector = await fetch_vector(ctx, known.info.in_use)
        loc = await location(state, ctx.type_name, vector.version)
        outcome = await versioned(ctx, known.info, loc, vector)
    except SearchUnavailable as exc:
        outcome = search_down(ctx, str(exc))
    outcome.excluded = len(ctx.excluded)
    if ctx.profile_trouble and outcome.degraded_reason is None:
        outcome.degraded_reason = ctx.profile_trouble
    if outcome.degraded_reason is None and outcome.location is not None and ctx.result_key is not None:
        same = outcome.location == in_use_loc
        outcome.cache_key = (
            ctx.result_key if same else result_key(ctx.request, ctx.type_name, outcome.location, ctx.excluded)
        )
    return outcome
