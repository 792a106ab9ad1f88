"""POST /v1/recommend as stages over one RequestContext: each fills in the context or answers early."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from serving.context import Outcome, RequestContext, Timer
from serving.degraded import without_orchestrator
from serving.models import RecommendRequest
from serving.nearest import nearest_items
from serving.profiles import read_profile
from serving.resolution import choose_type, read_type
from serving.results import cached_result
from serving.state import AppState
from serving.user_vectors import await_vector, start_vector

Stage = Callable[[RequestContext], Awaitable[Outcome | None]]

STAGES: tuple[Stage, ...] = (
    choose_type,  # the body's type, else the sticky A/B split
    read_type,  # its TypeInfo: fresh, or the last known during an orchestrator outage
    start_vector,  # the user vector, fetched while...
    read_profile,  # ...the profile is read for exclude-seen
    without_orchestrator,  # no fresh TypeInfo: the popular list, degraded
    cached_result,  # an identical request's items at the same index
    await_vector,  # no vector: popular items for a cold user, or degraded during an outage
    nearest_items,  # versioned k-NN, fallback fill
)


async def recommend(state: AppState, request: RecommendRequest, timer: Timer) -> Outcome:
    """The first stage's answer, labelled with the assignment and the number of excluded ids."""
    ctx = RequestContext(state, request, timer)
    try:
        for stage in STAGES:
            outcome = await stage(ctx)
            if outcome is not None:
                outcome.assignment = ctx.assignment
                return outcome
    finally:
        if ctx.early_vector is not None:  # answered before it was needed: it still fills the vector cache
            state.background.adopt(ctx.early_vector)
    raise AssertionError("the last stage always answers")
