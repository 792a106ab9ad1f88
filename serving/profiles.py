"""The user's stored profile: what exclude-seen removes (and what the fallback scorer reads)."""

from __future__ import annotations

import time

from contract.profiles import Profile
from contract.redis_clients import REDIS_FAILURES
from serving.context import Outcome, RequestContext
from serving.models import RecommendRequest
from serving.state import AppState


async def profile_of(state: AppState, user_id: str) -> Profile | None:
    """The user's stored profile (None when absent)."""
    raw = await state.redis.get(state.keys.profile(user_id))
    if raw is None:
        return None
    return Profile.model_validate_json(raw)


def needs_profile(request: RecommendRequest) -> bool:
    """Whether the request excludes what a known user has seen."""
    return request.user_id is not None and request.exclude_seen


def excluded(request: RecommendRequest, profile: Profile | None) -> frozenset[str]:
    """The given ids, plus with exclude_seen the profile's items and the items named as attributes."""
    ids = set(request.exclude_item_ids)
    if request.exclude_seen:
        if profile is not None:
            ids.update(i.item_id for i in profile.interactions)
        for attribute in request.attributes or ():
            namespace, _, ident = attribute.id.partition(":")
            if namespace == "item":
                ids.add(ident)
    return frozenset(ids)


async def read_profile(ctx: RequestContext) -> Outcome | None:
    """Stage: the profile exclude-seen needs (Redis down: seen items stay in), then the exclusions."""
    request = ctx.request
    if needs_profile(request):
        assert request.user_id is not None
        started = time.perf_counter()
        try:
            ctx.profile = await profile_of(ctx.state, request.user_id)
        except REDIS_FAILURES as exc:
            ctx.profile_trouble = f"profile unavailable ({type(exc).__name__}): seen items not excluded"
        ctx.timer.add("profile", started)
    ctx.excluded = excluded(request, ctx.profile)
    return None
