"""The recommend and similar-items flows: vector + version, versioned k-NN, fallback fill, degradation."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.exceptions import RedisError

from contract.filters import FilterNode
from contract.indexing import IndexedLocation
from contract.profiles import Profile
from contract.settings import Settings
from contract.wire import TypeInfo
from search.errors import IndexNotFound, SearchError, SearchUnavailable, VersionMismatch
from search.requests import FallbackQuery, PopularQuery, VersionedKnnQuery, WeightedTerm
from search.results import ScoredItem
from serving.assignment import Assignment, assign
from serving.directory import Known
from serving.errors import NotServable, Unavailable, UnknownItem, UnknownType
from serving.merge import Ranked, fill, only
from serving.models import RecommendRequest, SimilarQuery, filter_json
from serving.orchestrator_client import NoUserVector, OrchestratorDown, UserVec
from serving.state import AppState

# HNSW candidates per query: more candidates than k lifts recall at a small cost (the exact-top-10 target).
MIN_CANDIDATES = 100
MAX_CANDIDATES = 10_000
PROFILE_TERMS = 20  # tags/authors of the profile that drive the fallback scorer
PROFILE_ITEMS = 50  # recent profile items whose metadata the fallback scorer reads
POPULAR_REFRESH_SECONDS = 30.0


@dataclass
class Timer:
    """Milliseconds per step, also observed into the step histogram."""

    state: AppState
    started: float = field(default_factory=time.perf_counter)
    steps: dict[str, float] = field(default_factory=dict)

    def add(self, step: str, since: float) -> None:
        """Record a step that began at `since`."""
        seconds = time.perf_counter() - since
        self.steps[step] = round(self.steps.get(step, 0.0) + seconds * 1000, 3)
        metrics = self.state.metrics
        metrics.child(metrics.step_latency, step).observe(seconds)

    def took_ms(self) -> float:
        """Milliseconds since the request began."""
        return round((time.perf_counter() - self.started) * 1000, 3)


@dataclass
class Outcome:
    """What a flow produced, before rendering."""

    type_name: str
    version: str | None
    ranked: list[Ranked]
    location: IndexedLocation | None
    degraded_reason: str | None = None
    assignment: Assignment | None = None
    excluded: int = 0
    cache_key: bytes | None = None  # where the route stores the rendered items
    cached_items: list[dict[str, Any]] | None = None  # a result-cache hit, already rendered


# --- type resolution -------------------------------------------------------------------------------------


def subject_of(request: RecommendRequest) -> str:
    """What the A/B split is sticky on: the user id, else the attributes themselves."""
    if request.user_id is not None:
        return f"user:{request.user_id}"
    assert request.attributes is not None
    return "attrs:" + ",".join(f"{a.id}={a.weight!r}" for a in sorted(request.attributes, key=lambda a: a.id))


async def ab_weights(state: AppState) -> dict[str, float]:
    """The configured split, or equal weights over the types that have an in-use version."""
    if state.settings.ab_weights:
        return dict(state.settings.ab_weights)
    names = await state.directory.servable()
    if not names:
        raise NotServable("embedding_type: no embedding type has an in-use version yet")
    return dict.fromkeys(names, 1.0)


async def resolve_type(state: AppState, request: RecommendRequest) -> Assignment:
    """The body's type, else the sticky A/B assignment."""
    if request.embedding_type is not None:
        return Assignment(request.embedding_type, "request", ())
    try:
        weights = await ab_weights(state)
    except OrchestratorDown as exc:
        raise Unavailable(f"embedding_type: not given, and the A/B split is unknown ({exc})") from exc
    return assign(subject_of(request), weights)


async def default_type(state: AppState) -> str:
    """For requests without a user (similar items): the heaviest configured type, or the only servable one."""
    weights = await ab_weights(state)
    return max(sorted(weights), key=lambda name: weights[name])


# --- dependencies with breakers --------------------------------------------------------------------------


async def type_known(state: AppState, type_name: str) -> tuple[Known | None, str | None]:
    """Fresh TypeInfo, or (last known, reason) when the orchestrator is down."""
    breaker = state.orchestrator_breaker
    if breaker.allow():
        try:
            known = await state.directory.get(type_name)
            breaker.success()
            return known, None
        except OrchestratorDown as exc:
            breaker.failure()
            state.metrics.dependency_errors.labels(dependency="orchestrator").inc()
            return state.directory.last_known(type_name), f"orchestrator unavailable: {exc}"
    return state.directory.last_known(type_name), "orchestrator unavailable (circuit open)"


async def user_vector(
    state: AppState, request: RecommendRequest, type_name: str, in_use: str | None
) -> UserVec:
    """The user's vector and version: cached by (type, in-use version, user), else the orchestrator's."""
    who = subject_of(request) if request.attributes is not None else f"user:{request.user_id}"
    if in_use is not None:
        cached = state.user_vectors.get((type_name, in_use, who))
        if cached is not None:
            return cached
    breaker = state.orchestrator_breaker
    if not breaker.allow():
        raise OrchestratorDown("circuit open")
    try:
        if request.attributes is not None:
            vec = await state.orchestrator.aggregate(type_name, request.attributes)
        else:
            assert request.user_id is not None
            vec = await state.orchestrator.user_vector(type_name, request.user_id)
    except OrchestratorDown:
        breaker.failure()
        state.metrics.dependency_errors.labels(dependency="orchestrator").inc()
        raise
    breaker.success()
    state.user_vectors.put((type_name, vec.version, who), vec)
    return vec


async def profile_of(state: AppState, user_id: str) -> Profile | None:
    """The user's stored profile (None when absent)."""
    raw = await state.redis.get(state.keys.profile(user_id))
    if raw is None:
        return None
    return Profile.model_validate_json(raw)


async def search_call(state: AppState, coro: Any) -> Any:
    """Await an OpenSearch call through the breaker (SearchUnavailable when open or failing)."""
    breaker = state.search_breaker
    if not breaker.allow():
        coro.close()
        raise SearchUnavailable("OpenSearch unavailable (circuit open)")
    try:
        result = await coro
    except SearchUnavailable:
        breaker.failure()
        state.metrics.dependency_errors.labels(dependency="opensearch").inc()
        raise
    breaker.success()
    return result


# --- popularity (the degraded list) ----------------------------------------------------------------------


def _filter_key(node: FilterNode | None) -> bytes:
    return orjson.dumps(filter_json(node), option=orjson.OPT_SORT_KEYS)


async def popular(
    state: AppState, type_name: str, index: str, node: FilterNode | None, exclude: frozenset[str], k: int
) -> list[ScoredItem]:
    """Most popular items under the filters; remembered (unexcluded, oversized) for OpenSearch outages."""
    size = min(MAX_CANDIDATES, k + len(exclude) + 50)
    hits = await search_call(state, state.search.popular(PopularQuery(index=index, k=size, filter=node)))
    state.popular.put((type_name, _filter_key(node)), hits)
    return [h for h in hits if h.item_id not in exclude][:k]


def cached_popular(
    state: AppState, type_name: str, node: FilterNode | None, exclude: frozenset[str], k: int
) -> list[ScoredItem] | None:
    """The remembered popular list for these filters, exclusions applied (None when never fetched)."""
    entry = state.popular.get((type_name, _filter_key(node)))
    if entry is None:
        return None
    return [h for h in entry[1] if h.item_id not in exclude][:k]


def warm_popular(state: AppState, type_name: str, index: str, node: FilterNode | None) -> None:
    """Keep a popular list per (type, filters) recent, in the background, for the next outage."""
    entry = state.popular.get((type_name, _filter_key(node)))
    if entry is not None and entry[0] < POPULAR_REFRESH_SECONDS:
        return
    state.popular.put(
        (type_name, _filter_key(node)), entry[1] if entry else []
    )  # claim: no duplicate warmers

    async def run() -> None:
        with contextlib.suppress(SearchError):
            await popular(state, type_name, index, node, frozenset(), 100)

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[Any]] = set()


def _let_finish(task: asyncio.Task[Any]) -> None:
    """Keep a task nobody awaits alive until done, its outcome (even an error) consumed."""
    _background.add(task)
    task.add_done_callback(_background.discard)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())


# --- fallback --------------------------------------------------------------------------------------------


async def profile_terms(state: AppState, index: str, profile: Profile | None) -> tuple[WeightedTerm, ...]:
    """Tags and authors of the user's recent items, weighted by frequency (for the fallback scorer)."""
    if profile is None or not profile.interactions:
        return ()
    ids = [i.item_id for i in profile.interactions[-PROFILE_ITEMS:]]
    docs = await search_call(state, state.search.get_items(index, ids))
    counts: Counter[tuple[str, str]] = Counter()
    for doc in docs.values():
        for name in ("tags", "authors"):
            values = doc.get(name) or []
            for value in [values] if isinstance(values, str) else values:
                counts[(name, str(value))] += 1
    total = max(1, len(docs))
    return tuple(WeightedTerm(f, v, c / total) for (f, v), c in counts.most_common(PROFILE_TERMS))


# --- recommend -------------------------------------------------------------------------------------------


def _excluded(request: RecommendRequest, profile: Profile | None) -> frozenset[str]:
    excluded = set(request.exclude_item_ids)
    if request.exclude_seen:
        if profile is not None:
            excluded.update(i.item_id for i in profile.interactions)
        for attribute in request.attributes or ():
            namespace, _, ident = attribute.id.partition(":")
            if namespace == "item":
                excluded.add(ident)
    return frozenset(excluded)


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
    }
    return hashlib.blake2b(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


async def recommend(state: AppState, request: RecommendRequest, timer: Timer) -> Outcome:
    """Run /v1/recommend (labelled with the assignment and the number of excluded ids)."""
    assignment = await resolve_type(state, request)
    outcome = await _recommend(state, request, assignment, timer)
    outcome.assignment = assignment
    return outcome


async def _recommend(
    state: AppState, request: RecommendRequest, assignment: Assignment, timer: Timer
) -> Outcome:
    type_name = assignment.type_name

    started = time.perf_counter()
    known, orchestrator_trouble = await type_known(state, type_name)
    timer.add("type_info", started)
    if known is None:  # never reached the orchestrator for this type
        raise Unavailable(f"embedding_type: cannot resolve {type_name!r}: {orchestrator_trouble}")

    info = known.info
    in_use_loc = known.location(info.in_use) if info.in_use else None
    # The profile read (Redis) and the user-vector call (orchestrator) do not depend on each other: overlap.
    early: asyncio.Task[UserVec] | None = None
    needs_profile = request.user_id is not None and request.exclude_seen
    if needs_profile and orchestrator_trouble is None and info.in_use is not None and in_use_loc is not None:
        early = asyncio.ensure_future(user_vector(state, request, type_name, info.in_use))
    vector_started = time.perf_counter()

    profile: Profile | None = None
    profile_trouble: str | None = None
    if needs_profile:
        assert request.user_id is not None
        started = time.perf_counter()
        try:
            profile = await profile_of(state, request.user_id)
        except RedisError as exc:
            profile_trouble = f"profile unavailable ({type(exc).__name__}): seen items not excluded"
        timer.add("profile", started)
    excluded = _excluded(request, profile)

    if orchestrator_trouble is not None:
        return await _degraded_orchestrator(
            state, request, type_name, info, in_use_loc, excluded, orchestrator_trouble, timer
        )

    key: bytes | None = None  # the result-cache key of the in-use location
    if in_use_loc is not None and not request.explain and state.results.enabled:
        key = result_key(request, type_name, in_use_loc, excluded)
        if (cached := state.results.get(key)) is not None:
            if early is not None:
                _let_finish(early)  # it fills the user-vector cache
            return Outcome(
                type_name, in_use_loc.version, [], in_use_loc, excluded=len(excluded), cached_items=cached
            )
    if info.in_use is None or in_use_loc is None:
        raise NotServable(f"embedding_type: type {type_name!r} has no in-use, indexed version yet")

    started = vector_started if early is not None else time.perf_counter()
    try:
        vec = await (early or user_vector(state, request, type_name, info.in_use))
    except NoUserVector as exc:
        timer.add("user_vector", started)
        return await _cold_user(state, request, type_name, in_use_loc, excluded, str(exc), timer)
    except OrchestratorDown as exc:
        timer.add("user_vector", started)
        return await _degraded_orchestrator(
            state, request, type_name, info, in_use_loc, excluded, f"orchestrator unavailable: {exc}", timer
        )
    timer.add("user_vector", started)

    loc = in_use_loc if vec.version == in_use_loc.version else await _location(state, type_name, vec.version)
    try:
        outcome = await _versioned(state, request, type_name, info, loc, vec, excluded, profile, timer)
    except IndexNotFound:
        # The index of that version went away (a shadow index dropped after in_use moved on): re-resolve once.
        state.user_vectors.clear()
        known = await state.directory.refresh(type_name)
        vec = await user_vector(state, request, type_name, known.info.in_use)
        loc = await _location(state, type_name, vec.version)
        outcome = await _versioned(state, request, type_name, known.info, loc, vec, excluded, profile, timer)
    except SearchUnavailable as exc:
        outcome = _degraded_search(state, request, type_name, vec.version, excluded, str(exc))
    outcome.excluded = len(excluded)
    if profile_trouble and outcome.degraded_reason is None:
        outcome.degraded_reason = profile_trouble
    if outcome.degraded_reason is None and outcome.location is not None and key is not None:
        same = outcome.location == in_use_loc
        outcome.cache_key = key if same else result_key(request, type_name, outcome.location, excluded)
    return outcome


def candidates(k: int) -> int:
    """HNSW candidates of a k-NN query for the k best."""
    return min(MAX_CANDIDATES, max(k, MIN_CANDIDATES))


def ef_search(settings: Settings, k: int) -> int:
    """The beam width: the configured one (see serving_ef_search), never narrower than the candidates."""
    return max(settings.serving_ef_search, candidates(k))


async def _location(state: AppState, type_name: str, version: str) -> IndexedLocation:
    loc = await state.directory.location(type_name, version)
    if loc is None:
        raise Unavailable(f"embedding_type: version {version} of {type_name!r} is not indexed anywhere yet")
    return loc


async def _versioned(
    state: AppState,
    request: RecommendRequest,
    type_name: str,
    info: TypeInfo,
    loc: IndexedLocation,
    vec: UserVec,
    excluded: frozenset[str],
    profile: Profile | None,
    timer: Timer,
) -> Outcome:
    """k-NN over the user's version, then fallback items to fill what the version's vectors could not."""
    k = request.k
    query = VersionedKnnQuery(
        location=loc,
        similarity=info.type.similarity,
        vector=vec.vector,
        k=k,
        filter=request.filters,
        exclude_ids=excluded,
        candidates=candidates(k),
        ef_search=ef_search(state.settings, k),
    )
    started = time.perf_counter()
    try:
        hits = await search_call(state, state.search.knn(query))
    except VersionMismatch as exc:
        # The invariant check fired: never answer with those hits.
        raise Unavailable(f"version check failed: {exc}") from exc
    timer.add("knn", started)
    fallback: list[ScoredItem] = []
    reason = None
    if len(hits) < k:
        reason = f"no vector of version {vec.version}: fewer than k items with one matched the filters"
        started = time.perf_counter()
        terms = await profile_terms(state, loc.index, profile)
        fallback = await search_call(
            state,
            state.search.fallback(
                FallbackQuery(
                    location=loc, k=k - len(hits), terms=terms, filter=request.filters, exclude_ids=excluded
                )
            ),
        )
        timer.add("fallback", started)
    warm_popular(state, type_name, loc.index, request.filters)
    return Outcome(type_name, vec.version, fill(hits, fallback, k, vec.version, reason), loc)


async def _cold_user(
    state: AppState,
    request: RecommendRequest,
    type_name: str,
    loc: IndexedLocation,
    excluded: frozenset[str],
    why: str,
    timer: Timer,
) -> Outcome:
    """A user without a vector of the in-use version: the fallback scorer over every item (not degraded)."""
    started = time.perf_counter()
    try:
        hits = await popular(state, type_name, loc.index, request.filters, excluded, request.k)
    except SearchUnavailable as exc:
        return _degraded_search(state, request, type_name, loc.version, excluded, str(exc))
    timer.add("fallback", started)
    reason = f"user has no vector of version {loc.version}: {why}"
    return Outcome(
        type_name,
        loc.version,
        only(hits, "fallback", loc.version, reason, request.k),
        loc,
        excluded=len(excluded),
    )


async def _degraded_orchestrator(
    state: AppState,
    request: RecommendRequest,
    type_name: str,
    info: TypeInfo,
    loc: IndexedLocation | None,
    excluded: frozenset[str],
    trouble: str,
    timer: Timer,
) -> Outcome:
    """No user vector to be had: the popularity list under the same filters."""
    state.metrics.degraded.labels(reason="orchestrator").inc()
    if loc is None:
        raise Unavailable(f"embedding_type: {trouble}, and no index of {type_name!r} is known")
    started = time.perf_counter()
    try:
        hits = await popular(state, type_name, loc.index, request.filters, excluded, request.k)
    except SearchUnavailable as exc:
        return _degraded_search(state, request, type_name, None, excluded, f"{trouble}; {exc}")
    timer.add("popular", started)
    return Outcome(
        type_name, None, only(hits, "popular", None, trouble, request.k), loc, trouble, excluded=len(excluded)
    )


def _degraded_search(
    state: AppState,
    request: RecommendRequest,
    type_name: str,
    version: str | None,
    excluded: frozenset[str],
    trouble: str,
) -> Outcome:
    """OpenSearch is down: the remembered popular list for these filters, or 503."""
    state.metrics.degraded.labels(reason="opensearch").inc()
    hits = cached_popular(state, type_name, request.filters, excluded, request.k)
    if hits is None:
        raise Unavailable(f"search unavailable and no popular list cached for these filters: {trouble}")
    reason = f"search unavailable, cached popular list: {trouble}"
    return Outcome(
        type_name, None, only(hits, "popular", None, reason, request.k), None, reason, excluded=len(excluded)
    )


# --- similar items ---------------------------------------------------------------------------------------


async def similar(state: AppState, query: SimilarQuery, timer: Timer) -> Outcome:
    """Nearest items to an item's vector of the in-use version, itself excluded."""
    try:
        type_name = query.embedding_type or await default_type(state)
    except OrchestratorDown as exc:
        raise Unavailable(f"embedding_type: not given, and the type list is unavailable ({exc})") from exc
    started = time.perf_counter()
    known, trouble = await type_known(state, type_name)
    timer.add("type_info", started)
    if known is None or trouble is not None:
        raise Unavailable(f"embedding_type: cannot resolve the in-use version of {type_name!r}: {trouble}")
    info = known.info
    if info.in_use is None:
        raise NotServable(f"embedding_type: type {type_name!r} has no in-use version yet")
    loc = await _location(state, type_name, info.in_use)
    started = time.perf_counter()
    try:
        docs = await search_call(state, state.search.get_items(loc.index, [query.item_id]))
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
    knn = VersionedKnnQuery(
        location=loc,
        similarity=info.type.similarity,
        vector=doc[loc.vector_field],
        k=query.k,
        filter=query.filters,
        exclude_ids=frozenset({query.item_id}),
        candidates=candidates(query.k),
        ef_search=ef_search(state.settings, query.k),
    )
    started = time.perf_counter()
    try:
        hits = await search_call(state, state.search.knn(knn))
    except SearchUnavailable as exc:
        raise Unavailable(f"search unavailable: {exc}") from exc
    timer.add("knn", started)
    return Outcome(type_name, loc.version, fill(hits, [], query.k, loc.version, None), loc)


def check_type_name(type_name: str, info: TypeInfo | None) -> None:
    """Refuse a type the orchestrator does not know."""
    if info is None:
        raise UnknownType(f"embedding_type: no embedding type {type_name!r} is registered")
