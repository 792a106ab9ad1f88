"""The user's vector and its version: from the cache keyed by (type, in-use version, source), else the
orchestrator's; started early so it overlaps the profile read."""

from __future__ import annotations

import asyncio
import time

from contract.wire import UserVector
from serving.context import Outcome, RequestContext
from serving.degraded import orchestrator_down
from serving.errors import NotServable
from serving.fallback import cold_user
from serving.profiles import needs_profile
from serving.upstream import NoUserVector, OrchestratorDown


async def fetch_vector(ctx: RequestContext, in_use: str | None) -> UserVector:
    """The request's user vector: cached for the in-use version, else aggregated or looked up."""
    state, request, type_name, source = ctx.state, ctx.request, ctx.type_name, ctx.vector_source
    if in_use is not None:
        cached = state.user_vectors.get((type_name, in_use, source))
        if cached is not None:
            return cached
    if request.attributes is not None:
        vector = await state.orchestrator.aggregate(type_name, request.attributes)
    else:
        assert request.user_id is not None
        vector = await state.orchestrator.user_vector(type_name, request.user_id)
    state.user_vectors.put((type_name, vector.version, source), vector)
    return vector


async def start_vector(ctx: RequestContext) -> Outcome | None:
    """Stage: when a profile read follows, fetch the vector meanwhile (they do not depend on each other)."""
    ctx.vector_started = time.perf_counter()
    in_use = ctx.info.in_use
    if needs_profile(ctx.request) and ctx.orchestrator_trouble is None and in_use and ctx.in_use_location:
        ctx.early_vector = asyncio.ensure_future(fetch_vector(ctx, in_use))
    return None


async def await_vector(ctx: RequestContext) -> Outcome | None:
    """Stage: the vector; a user without one gets popular items, an orchestrator outage a degraded answer."""
    location, in_use = ctx.in_use_location, ctx.info.in_use
    if in_use is None or location is None:
        raise NotServable(f"embedding_type: type {ctx.type_name!r} has no in-use, indexed version yet")
    early, ctx.early_vector = ctx.early_vector, None
    started = ctx.vector_started if early is not None else time.perf_counter()
    try:
        ctx.vector = await (early or fetch_vector(ctx, in_use))
    except NoUserVector as exc:
        ctx.timer.add("user_vector", started)
        return await cold_user(ctx, location, str(exc))
    except OrchestratorDown as exc:
        ctx.timer.add("user_vector", started)
        return await orchestrator_down(ctx, location, str(exc))
    ctx.timer.add("user_vector", started)
    return None
