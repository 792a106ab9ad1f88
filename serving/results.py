"""The result cache: rendered items keyed by the normalized request and the exact index generation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson

from contract.indexing import IndexedLocation
from serving.context import Outcome, RequestContext
from serving.models import RecommendRequest, filter_json


def result_key(
    request: RecommendRequest, type_name: str, loc: IndexedLocation, excluded: Iterable[str]
) -> bytes:
    """Normalized request + version + index generation (index and when it was registered) + exclusions."""
    payload = {
        "t": type_name,
        "v": loc.version,
        "i": loc.index,
        "g": loc.indexed_at.isoformat(),
        "u": request.user_id,
        "a": sorted((a.id, a.weight) for a in request.attributes or ()),
        "k": request.k,
        "f": filter_json(request.filters),
        "x": sorted(excluded),
        "e": request.explain,
        "q": request.exact,
    }
    return hashlib.blake2b(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


async def cached_result(ctx: RequestContext) -> Outcome | None:
    """Stage: the rendered items of an identical request at the same in-use index, if still cached."""
    state, location = ctx.state, ctx.in_use_location
    if location is None or ctx.request.explain or not state.results.enabled:
        return None
    ctx.result_key = result_key(ctx.request, ctx.type_name, location, ctx.excluded)
    cached = state.results.get(ctx.result_key)
    if cached is None:
        return None
    return Outcome(
        ctx.type_name, location.version, [], location, excluded=len(ctx.excluded), cached_items=cached
    )
