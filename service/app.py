"""The app factory both services build on: handlers, middleware, OpenAPI, and the lifespan skeleton."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp

from service.admission import Admission
from service.direct import DirectRoute
from service.middleware import BodyCheck, RequestMetrics, RequestObserver, Unexpected
from service.openapi import finish
from service.rendering import install_handlers


class ServiceApp(FastAPI):
    """FastAPI with our middleware outermost, then FastAPI's exception handlers and router.

    FastAPI puts added middleware inside three layers of its own: a 500 page (service.middleware.Unexpected
    answers every error before one reaches it), an OpenTelemetry hook (off here) and a body limit (BodyCheck
    is ours). They did nothing for us and cost ~30k instructions a request (bench/README.md).
    """

    def __init__(self, *, outer: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outer = outer

    def build_middleware_stack(self) -> ASGIApp:
        """`outer` around FastAPI's innermost layers, as FastAPI.build_middleware_stack builds those."""
        handlers = dict(self.exception_handlers)
        inner = AsyncExitStackMiddleware(self.router)
        return self.outer(ExceptionMiddleware(inner, handlers=handlers, debug=self.debug))


def create_service_app(
    *,
    title: str,
    version: str,
    description: str,
    routers: Iterable[APIRouter],
    state_name: str,
    open_state: Callable[[], AbstractAsyncContextManager[object]],
    observer: RequestObserver,
    max_in_flight: int,
    budget: float | None = None,
    security_schemes: Mapping[str, Any] | None = None,
    direct: Iterable[str] = (),
) -> FastAPI:
    """A FastAPI app whose lifespan holds `open_state()` open as `app.state.<state_name>`.

    Every error answers in the one shape (service.rendering), a body must be strict JSON of at most
    contract.wire.MAX_BODY_BYTES (service.middleware.BodyCheck), and every request reaches `observer`.
    Past `max_in_flight` requests at once the rest are answered 503 Overloaded; each admitted one has
    `budget` seconds for its dependency calls (service.admission).
    `security_schemes` go into the OpenAPI components for routes that check credentials themselves rather
    than through FastAPI's security dependencies. The routes at the `direct` paths (one method each, an
    endpoint that takes only the Request) skip FastAPI's inner layers (service.direct).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_state() as state:
            setattr(app.state, state_name, state)
            yield

    routers = tuple(routers)
    direct_routes: list[APIRoute] = []
    for path in direct:
        routes = (r for router in routers for r in router.routes if isinstance(r, APIRoute))
        (route,) = (r for r in routes if r.path == path)
        direct_routes.append(route)

    def outer(app: ASGIApp) -> ASGIApp:
        # Outermost first: Unexpected, RequestMetrics (it sees the 503s and 413s), Admission (a shed
        # request's body is never read), BodyCheck, the direct routes.
        for route in direct_routes:
            app = DirectRoute(app, route=route)
        app = Admission(BodyCheck(app), limit=max_in_flight, budget=budget)
        return Unexpected(RequestMetrics(app, observer=observer))

    app = ServiceApp(
        outer=outer,
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
    app.openapi = _openapi_with(app, security_schemes or {})  # type: ignore[method-assign]
    return app


def _openapi_with(app: FastAPI, security_schemes: Mapping[str, Any]) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            if security_schemes:
                schema.setdefault("components", {})["securitySchemes"] = dict(security_schemes)
            app.openapi_schema = finish(schema)
        return app.openapi_schema

    return openapi
