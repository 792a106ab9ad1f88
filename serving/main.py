"""The serving app: create_app(settings) builds it; the lifespan owns the clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError

from contract.settings import Settings
from serving.api.routes import health, recommend, similar
from serving.errors import ServingError, handle_serving_error, handle_unexpected, handle_validation_error
from serving.state import AppState


def create_app(settings: Settings) -> FastAPI:
    """A serving app for `settings` (GET / is left free for the explorer page)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = AppState.build(settings)
        app.state.serving = state
        try:
            yield
        finally:
            await state.aclose()

    app = FastAPI(
        title="Lockstep serving",
        version="1.0",
        description="Recommendations from versioned k-NN: every score comes from item vectors of the same "
        "version as the user vector, and every response says which version.",
        lifespan=lifespan,
    )
    app.add_exception_handler(ServingError, handle_serving_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(Exception, handle_unexpected)
    app.include_router(recommend.router)
    app.include_router(similar.router)
    app.include_router(health.router)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        state: AppState | None = getattr(request.app.state, "serving", None)
        if state is not None:
            state.metrics.requests.labels(route=path, status=str(response.status_code)).inc()
            state.metrics.latency.labels(route=path).observe(time.perf_counter() - started)
        return response

    return app
