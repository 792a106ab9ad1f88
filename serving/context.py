"""What a request carries through its stages, and what a flow hands to rendering."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from contract.indexing import IndexedLocation
from contract.profiles import Profile
from contract.wire import TypeInfo, UserVector
from serving.assignment import Assignment
from serving.directory import Known
from serving.merge import Ranked
from serving.models import RecommendRequest
from serving.state import AppState


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
        metrics.step_latency.labels(step).observe(seconds)

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


@dataclass
class RequestContext:
    """One /v1/recommend request as its stages fill it in (each stage reads what the earlier ones set)."""

    state: AppState
    request: RecommendRequest
    timer: Timer
    assignment: Assignment | None = None
    known: Known | None = None  # the type's TypeInfo: fresh, or the last known during an outage
    orchestrator_trouble: str | None = None  # why `known` may be stale: the answer degrades
    profile: Profile | None = None
    profile_trouble: str | None = None  # why seen items could not be excluded
    excluded: frozenset[str] = frozenset()
    vector_started: float = 0.0
    early_vector: asyncio.Task[UserVector] | None = None  # started before the profile read, awaited after
    vector: UserVector | None = None
    result_key: bytes | None = None  # the result-cache key at the in-use location

    @property
    def type_name(self) -> str:
        """The type serving this request."""
        assert self.assignment is not None, "the type is chosen first"
        return self.assignment.type_name

    @property
    def info(self) -> TypeInfo:
        """The type's TypeInfo."""
        assert self.known is not None, "the type is read second"
        return self.known.info

    @property
    def in_use_location(self) -> IndexedLocation | None:
        """Where the in-use version is indexed (None before there is one)."""
        in_use = self.info.in_use
        return self.known.location(in_use) if self.known is not None and in_use else None

    @property
    def subject(self) -> str:
        """What the A/B split is sticky on: the user id, else the attributes themselves."""
        if self.request.user_id is not None:
            return f"user:{self.request.user_id}"
        return self.vector_source

    @property
    def vector_source(self) -> str:
        """What the user vector is made from: the attributes when given, else the user id."""
        attributes = self.request.attributes
        if attributes is None:
            return f"user:{self.request.user_id}"
        return "attrs:" + ",".join(f"{a.id}={a.weight!r}" for a in sorted(attributes, key=lambda a: a.id))
