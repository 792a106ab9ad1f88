"""A hot route dispatched straight to its endpoint: the same answer as through FastAPI's router, less work.

FastAPI's inner layers (exception middleware, exit stack, router matching, the request/response wrapper,
dependency solving) cost serving 0.09-0.14 ms of CPU per request on POST /v1/recommend, about a third of
what it adds over a bare app making the same two calls (bench/README.md, "direct dispatch"). That route's
endpoint takes only the Request and raises ServiceError for every refusal. Everything outside the skipped
layers still applies: our middleware (errors, metrics, admission, body checks) and FastAPI's own outer
layers. The route stays registered, for the OpenAPI document and for every other method on its path.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth import authenticate, route_level
from service.rendering import expected_error


class DirectRoute:
    """POST (or the route's one method) on `route.path` goes to `route.endpoint(request)`; all else to `app`.

    The key check of the route's declared level comes first, as GuardedRoute does it; refusals and a client
    that hung up are answered as the app's exception handlers answer them; anything else propagates to
    service.middleware.Unexpected.
    """

    def __init__(self, app: ASGIApp, route: APIRoute) -> None:
        assert route.methods is not None and len(route.methods) == 1, "a direct route has one method"
        (method,) = route.methods
        self.app = app
        self.route = route
        self.method = method
        self.level = route_level(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.route.path or scope["method"] != self.method:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # as the router sets it: the request metrics' route label
        scope["endpoint"] = self.route.endpoint
        request = Request(scope, receive, send)
        try:
            if self.level is not None:
                authenticate(request, self.level)
            response = await self.route.endpoint(request)
        except Exception as exc:
            answer = expected_error(exc)
            if answer is None:
                raise
            response = answer
        await response(scope, receive, send)
