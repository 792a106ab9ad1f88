"""The serving app: create_app(settings) builds it; the lifespan owns the clients."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from contract.redis_setup import SetupGate
from contract.settings import ServingSettings
from service.app import create_service_app
from service.auth import SECURITY_SCHEMES, KeyRing
from serving.api.routes import explorer, health, recommend, similar
from serving.state import AppState

DESCRIPTION = (
    "Recommendations from versioned k-NN: every score comes from item vectors of the same version as the "
    "user vector, and every response says which version.\n\n"
    "**Authentication:** every `/v1` route needs an API key, as `Authorization: Bearer <key>` or "
    "`X-API-Key` (the orchestrator's keys: LOCKSTEP_READER_KEYS, LOCKSTEP_INDEXER_KEYS, "
    "LOCKSTEP_ADMIN_KEYS). "
    "Recommendations, similar items and the type list admit reader, indexer and admin; user data (the user "
    "list, a user's history) only admin. The explorer page, probes and `/metrics` need none."
)

YOUNG_GC_THRESHOLD = 50_000  # allocations between young collections (Python's default: 700)


class _StateMetrics:
    """The request observer: serving's metrics live in the state the lifespan builds."""

    state: AppState | None = None

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request once the state exists."""
        if self.state is not None:
            self.state.metrics.observe(route, method, status, seconds)


def create_app(settings: ServingSettings) -> FastAPI:
    """A serving app for `settings` (GET / is left free for the explorer page)."""
    observer = _StateMetrics()

    @asynccontextmanager
    async def running() -> AsyncIterator[AppState]:
        state = AppState.build(settings)
        # A Redis of the wrong topology or set up wrongly refuses the start (RedisSetupError names it).
        await SetupGate(state.redis, settings, state.keys).startup()
        observer.state = state
        # Everything loaded so far lives as long as the process: keep it out of the collector's full passes,
        # which otherwise walk ~10^5 objects of FastAPI, pydantic and numpy every few thousand requests (p99).
        gc.freeze()
        # Young collections are paced by allocations, not garbage (a request leaves none in cycles): at
        # Python's 700 one ran every few requests. A pass costs what is still alive, the requests in flight,
        # whatever the threshold, so rarer passes cost less in all: ~0.02 ms a request (bench/README.md).
        gc.set_threshold(YOUNG_GC_THRESHOLD, 10, 10)
        try:
            yield state
        finally:
            await state.aclose()

    app = create_service_app(
        title="Lockstep serving",
        version="1.0",
        description=DESCRIPTION,
        routers=[recommend.router, similar.router, health.router, explorer.router],
        state_name="serving",
        open_state=running,
        observer=observer,
        max_in_flight=settings.serving_max_in_flight,
        budget=settings.serving_deadline_seconds,
        # Routes authenticate in their route class (service.auth.GuardedRoute): schemes are declared here.
        security_schemes=SECURITY_SCHEMES,
        direct=("/v1/recommend",) if settings.serving_direct_dispatch else (),
    )
    # Read by GuardedRoute before the body (and before the lifespan state is needed).
    app.state.keyring = KeyRing.of(settings)
    return app
