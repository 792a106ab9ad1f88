"""The popular list per (type, filters): cold users' answer, and what outages fall back on.

Every fetch is remembered unexcluded and oversized, so a request during an OpenSearch outage can still be
served from it; requests keep each list warm in the background.
"""

from __future__ import annotations

import contextlib

import orjson

from contract.filters import FilterNode
from contract.types import MAX_CANDIDATES
from search.errors import SearchError
from search.requests import PopularQuery
from search.results import ScoredItem
from serving.context import RequestContext
from serving.models import filter_json
from serving.searching import searched
from serving.state import AppState

REFRESH_SECONDS = 30.0
HEADROOM = 50  # items fetched beyond k + exclusions, so the remembered list serves other exclusions too
WARM_K = 100


def _key(type_name: str, node: FilterNode | None) -> tuple[str, bytes]:
    return type_name, orjson.dumps(filter_json(node), option=orjson.OPT_SORT_KEYS)


async def _fetch(
    state: AppState, type_name: str, index: str, node: FilterNode | None, size: int
) -> list[ScoredItem]:
    hits = await searched(state, state.search.popular(PopularQuery(index=index, k=size, filter=node)))
    state.popular.put(_key(type_name, node), hits)
    return hits


async def popular(ctx: RequestContext, index: str) -> list[ScoredItem]:
    """The most popular items of `index` under the request's filters and exclusions."""
    k, excluded = ctx.request.k, ctx.excluded
    size = min(MAX_CANDIDATES, k + len(excluded) + HEADROOM)
    hits = await _fetch(ctx.state, ctx.type_name, index, ctx.request.filters, size)
    return [h for h in hits if h.item_id not in excluded][:k]


def remembered(ctx: RequestContext) -> list[ScoredItem] | None:
    """The last popular list fetched for the request's filters, exclusions applied (None: never fetched)."""
    entry = ctx.state.popular.get(_key(ctx.type_name, ctx.request.filters))
    if entry is None:
        return None
    return [h for h in entry[1] if h.item_id not in ctx.excluded][: ctx.request.k]


def keep_warm(ctx: RequestContext, index: str) -> None:
    """Refresh the request's popular list in the background when it is missing or old."""
    state, type_name, node = ctx.state, ctx.type_name, ctx.request.filters
    key = _key(type_name, node)
    entry = state.popular.get(key)
    if entry is not None and entry[0] < REFRESH_SECONDS:
        return
    state.popular.put(key, entry[1] if entry else [])  # claim it: no duplicate warmers

    async def refresh() -> None:
        with contextlib.suppress(SearchError):
            await _fetch(state, type_name, index, node, min(MAX_CANDIDATES, WARM_K + HEADROOM))

    state.background.spawn(refresh())
