"""The serving app: create_app(settings) builds it; the lifespan owns the clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.settings import Settings
from serving.api.routes import explorer, health, recommend, similar
from serving.errors import ServingError, handle_serving_error, handle_unexpected, handle_validation_error
from serving.state import AppState


class RequestMetrics:
    """Pure ASGI middleware counting requests and latency per route (BaseHTTPMiddleware costs ~1 ms)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            state: AppState | None = getattr(scope["app"].state, "serving", None) if "app" in scope else None
            if state is not None:
                path = getattr(scope.get("route"), "path", "unmatched")
                metrics = state.metrics
                metrics.child(metrics.requests, path, str(status)).inc()
                metrics.child(metrics.latency, path).observe(time.perf_counter() - started)


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
    app.include_router(explorer.router)

    app.add_middleware(RequestMetrics)
    return app
