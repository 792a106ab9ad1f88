"""GET /v1/items/{item_id}/similar: nearest items to an item's vector of the in-use version."""

from __future__ import annotations

import time

from search.errors import SearchUnavailable
from serving.context import Outcome, Timer
from serving.errors import NotServable, Unavailable, UnknownItem
from serving.knn import knn_query
from serving.merge import fill
from serving.models import SimilarQuery
from serving.resolution import default_type, location, type_known
from serving.searching import searched
from serving.state import AppState


async def similar(state: AppState, query: SimilarQuery, timer: Timer) -> Outcome:
    """Nearest items to an item's vector of the in-use version, itself excluded."""
    type_name = query.embedding_type or await default_type(state)
    started = time.perf_counter()
    known, trouble = await type_known(state, type_name)
    timer.add("type_info", started)
    if known is None or trouble is not None:
        raise Unavailable(f"embedding_type: cannot resolve the in-use version of {type_name!r}: {trouble}")
    info = known.info
    if info.in_use is None:
        raise NotServable(f"embedding_type: type {type_name!r} has no in-use version yet")
    loc = await location(state, type_name, info.in_use)
    started = time.perf_counter()
    try:
        docs = await searched(state, state.search.get_items(loc.index, [query.item_id]))
    except SearchUnavailable as exc:
        raise Unavailable(f"search unavailable: {exc}") from exc
    timer.add("item_vector", started)
    doc = docs.get(query.item_id)
    if doc is None:
        raise UnknownItem(f"item_id: no item {query.item_id!r} in {loc.index}")
    if doc.get(loc.version_field) != loc.version or not doc.get(loc.vector_field):
        raise UnknownItem(
            f"item_id: item {query.item_id!r} has no vector of version {loc.version} of {type_name}"
        )
    knn = knn_query(
        state.settings,
        loc,
        info.type,
        doc[loc.vector_field],
        query.k,
        filters=query.filters,
        exclude=frozenset({query.item_id}),
    )
    started = time.perf_counter()
    try:
        hits = await searched(state, state.search.knn(knn))
    except SearchUnavailable as exc:
        raise Unavailable(f"search unavailable: {exc}") from exc
    timer.add("knn", started)
    return Outcome(type_name, loc.version, fill(hits, [], query.k, loc.version, None), loc)
