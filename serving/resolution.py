"""Which type serves a request, and what serving knows of it (fresh, or the last known during an outage)."""

from __future__ import annotations

import time

from contract.indexing import IndexedLocation
from serving.assignment import Assignment, assign
from serving.context import Outcome, RequestContext
from serving.directory import Known
from serving.errors import NotServable, Unavailable
from serving.state import AppState
from serving.upstream import OrchestratorDown


async def ab_weights(state: AppState) -> dict[str, float]:
    """The configured split, or equal weights over the types that have an in-use version."""
    if state.settings.ab_weights:
        return dict(state.settings.ab_weights)
    names = await state.directory.servable()
    if not names:
        raise NotServable("embedding_type: no embedding type has an in-use version yet")
    return dict.fromkeys(names, 1.0)


async def default_type(state: AppState) -> str:
    """For requests without a user (similar items): the heaviest configured type, or the only servable one."""
    try:
        weights = await ab_weights(state)
    except OrchestratorDown as exc:
        raise Unavailable(f"embedding_type: not given, and the type list is unavailable ({exc})") from exc
    return max(sorted(weights), key=lambda name: weights[name])


async def type_known(state: AppState, type_name: str) -> tuple[Known | None, str | None]:
    """Fresh TypeInfo, or (last known, reason) when the orchestrator is down."""
    try:
        return await state.directory.get(type_name), None
    except OrchestratorDown as exc:
        return state.directory.last_known(type_name), str(exc)


async def location(state: AppState, type_name: str, version: str) -> IndexedLocation:
    """Where `version` of a type is indexed (Unavailable while it is nowhere yet)."""
    loc = await state.directory.location(type_name, version)
    if loc is None:
        raise Unavailable(f"embedding_type: version {version} of {type_name!r} is not indexed anywhere yet")
    return loc


async def choose_type(ctx: RequestContext) -> Outcome | None:
    """Stage: the body's type, else the sticky A/B assignment."""
    request = ctx.request
    if request.embedding_type is not None:
        ctx.assignment = Assignment(request.embedding_type, "request", ())
        return None
    try:
        weights = await ab_weights(ctx.state)
    except OrchestratorDown as exc:
        raise Unavailable(f"embedding_type: not given, and the A/B split is unknown ({exc})") from exc
    ctx.assignment = assign(ctx.subject, weights)
    return None


async def read_type(ctx: RequestContext) -> Outcome | None:
    """Stage: the type's TypeInfo, or the last known one (and why) while the orchestrator is down."""
    started = time.perf_counter()
    ctx.known, ctx.orchestrator_trouble = await type_known(ctx.state, ctx.type_name)
    ctx.timer.add("type_info", started)
    if ctx.known is None:  # never reached the orchestrator for this type
        raise Unavailable(f"embedding_type: cannot resolve {ctx.type_name!r}: {ctx.orchestrator_trouble}")
    return None
