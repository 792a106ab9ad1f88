"""The user's stored profile: what exclude-seen removes (and what the fallback scorer reads)."""

from __future__ import annotations

import time
from itertools import chain

from contract.profiles import Profile
from contract.redis_clients import REDIS_FAILURES
from contract.wire import MAX_EXCLUDED
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
    """The given ids, plus with exclude_seen the items named as attributes and the profile's, newest first.

    At most MAX_EXCLUDED in all (the search layer's limit): the given ids always, the others while room is
    left, so a long history drops its oldest items from exclusion rather than failing the request.
    """
    ids = dict.fromkeys(request.exclude_item_ids)
    if request.exclude_seen:
        named = (a.id.partition(":") for a in request.attributes or ())
        seen = (i.item_id for i in reversed(profile.interactions)) if profile is not None else ()
        for item_id in chain((ident for namespace, _, ident in named if namespace == "item"), seen):
            if len(ids) >= MAX_EXCLUDED:
                break
            ids.setdefault(item_id)
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
