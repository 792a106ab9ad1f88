"""The serving app: create_app(settings) builds it; the lifespan owns the clients."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.settings import Settings
from serving.api.routes import explorer, health, recommend, similar
from serving.errors import (
    ServingError,
    handle_http_error,
    handle_serving_error,
    handle_unexpected,
    handle_validation_error,
)
from serving.state import AppState

_log = logging.getLogger(__name__)


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


class DirectRoute:
    """Pure ASGI dispatch of one hot POST route straight to its endpoint, the same answer as via the router.

    The endpoint takes only the Request and raises ServingError for every refusal, so FastAPI's layers
    (error and exception middleware, body limit, telemetry, matching, dependency solving) add nothing:
    ServingError is rendered here by the same handler, anything else is logged and rendered as the house
    500, as FastAPI's error middleware would. The route stays registered for the OpenAPI schema and for
    every other method and path.
    """

    def __init__(self, app: ASGIApp, route: APIRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != self.route.path:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # what the router would set: the metrics' route label reads it
        scope["endpoint"] = self.route.endpoint
        request = Request(scope, receive, send)
        try:
            response = await self.route.endpoint(request)
        except ServingError as exc:
            response = await handle_serving_error(request, exc)
        except Exception as exc:
            _log.exception("unexpected error on %s", self.route.path)
            response = await handle_unexpected(request, exc)
        await response(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _route(router: APIRouter, path: str) -> APIRoute:
    routes = router.routes  # the router's own: FastAPI 0.165 keeps an included router whole in app.routes
    return next(
        r for r in routes if isinstance(r, APIRoute) and r.path == path and "POST" in (r.methods or ())
    )


class ServingApp(FastAPI):
    """FastAPI with two pure ASGI layers outside its own stack: request metrics, then the direct route."""

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette calls this once; the result serves every request (scope["app"] is already set)."""
        route = _route(recommend.router, "/v1/recommend")
        return RequestMetrics(DirectRoute(super().build_middleware_stack(), route))


def create_app(settings: Settings) -> FastAPI:
    """A serving app for `settings` (GET / is left free for the explorer page)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = AppState.build(settings)
        app.state.serving = state
        # Everything loaded so far lives as long as the process: keep it out of the collector's full passes,
        # which otherwise walk ~10^5 objects of FastAPI, pydantic and numpy every few thousand requests (p99).
        gc.freeze()
        try:
            yield
        finally:
            await state.aclose()

    app = ServingApp(
        title="Lockstep serving",
        version="1.0",
        description="Recommendations from versioned k-NN: every score comes from item vectors of the same "
        "version as the user vector, and every response says which version.",
        lifespan=lifespan,
        # Our metrics are Prometheus (serving.metrics); FastAPI's OpenTelemetry check would run every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_exception_handler(ServingError, handle_serving_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)
    app.include_router(recommend.router)
    app.include_router(similar.router)
    app.include_router(health.router)
    app.include_router(explorer.router)
    return app
