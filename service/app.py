"""The app factory both services build on: handlers, middleware, OpenAPI, and the lifespan skeleton."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from service.middleware import BodyLimit, RequestMetrics, RequestObserver, Unexpected
from service.rendering import install_handlers


def create_service_app(
    *,
    title: str,
    version: str,
    description: str,
    routers: Iterable[APIRouter],
    state_name: str,
    open_state: Callable[[], AbstractAsyncContextManager[object]],
    observer: RequestObserver,
    security_schemes: Mapping[str, Any] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan holds `open_state()` open as `app.state.<state_name>`.

    Every error answers in the one shape (service.rendering), bodies over contract.wire.MAX_BODY_BYTES get
    413, and every request reaches `observer`. `security_schemes` go into the OpenAPI components for routes
    that check credentials themselves rather than through FastAPI's security dependencies.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_state() as state:
            setattr(app.state, state_name, state)
            yield

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        # Our metrics are Prometheus (RequestMetrics); FastAPI's OpenTelemetry check would run every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for router in routers:
        app.include_router(router)
    install_handlers(app)
    # Each added one wraps the ones before: Unexpected, then RequestMetrics (it sees the 413s), BodyLimit.
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestMetrics, observer=observer)
    app.add_middleware(Unexpected)
    if security_schemes:
        app.openapi = _openapi_with(app, security_schemes)  # type: ignore[method-assign]
    return app


def _openapi_with(app: FastAPI, security_schemes: Mapping[str, Any]) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = dict(security_schemes)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
