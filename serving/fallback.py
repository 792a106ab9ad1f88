"""Items scored without the version's vectors: fallback fill of short k-NN answers, popular for cold users."""

from __future__ import annotations

import time
from collections import Counter

from contract.indexing import IndexedLocation
from contract.items import schema
from contract.profiles import Profile
from search.errors import SearchUnavailable
from search.requests import FallbackQuery, WeightedTerm
from search.results import ScoredItem
from serving.context import Outcome, RequestContext
from serving.degraded import search_down
from serving.merge import only
from serving.popularity import popular
from serving.searching import searched
from serving.state import AppState

PROFILE_TERMS = 20  # content terms (the item schema's `content` fields) that drive the fallback scorer
PROFILE_ITEMS = 50  # recent profile items whose metadata the fallback scorer reads


async def profile_terms(state: AppState, index: str, profile: Profile | None) -> tuple[WeightedTerm, ...]:
    """The content terms of the user's recent items, weighted by frequency (for the fallback scorer)."""
    if profile is None or not profile.interactions:
        return ()
    ids = [i.item_id for i in profile.interactions[-PROFILE_ITEMS:]]
    docs = await searched(state, state.search.get_items(index, ids))
    counts: Counter[tuple[str, str]] = Counter()
    for doc in docs.values():
        for name in schema().content:
            values = doc.get(name) or []
            for value in [values] if isinstance(values, str) else values:
                counts[(name, str(value))] += 1
    total = max(1, len(docs))
    return tuple(WeightedTerm(f, v, c / total) for (f, v), c in counts.most_common(PROFILE_TERMS))


async def fallback_items(ctx: RequestContext, location: IndexedLocation, k: int) -> list[ScoredItem]:
    """Up to `k` items without a vector of the location's version, scored by the user's profile terms."""
    terms = await profile_terms(ctx.state, location.index, ctx.profile)
    query = FallbackQuery(
        location=location, k=k, terms=terms, filter=ctx.request.filters, exclude_ids=ctx.excluded
    )
    return await searched(ctx.state, ctx.state.search.fallback(query))


async def cold_user(ctx: RequestContext, location: IndexedLocation, why: str) -> Outcome:
    """A user without a vector of the in-use version: the popular items (not degraded)."""
    started = time.perf_counter()
    try:
        hits = await popular(ctx, location.index)
    except SearchUnavailable as exc:
        return search_down(ctx, str(exc))
    ctx.timer.add("fallback", started)
    reason = f"user has no vector of version {location.version}: {why}"
    ranked = only(hits, "fallback", location.version, reason, ctx.request.k)
    return Outcome(ctx.type_name, location.version, ranked, location, excluded=len(ctx.excluded))
