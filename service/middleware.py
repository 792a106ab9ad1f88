"""The middleware both apps run, pure ASGI (no per-request task as in BaseHTTPMiddleware)."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.wire import MAX_BODY_BYTES
from service.errors import BodyTooLarge
from service.rendering import CLIENT_CLOSED, internal_error, render

log = logging.getLogger(__name__)


class Unexpected:
    """Any exception no handler took: logged with its traceback and answered 500 InternalError.

    Not re-raised, unlike Starlette's own error layer, after which uvicorn drops the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if started:
                raise  # too late for an answer of ours: the server ends the connection
            await internal_error(exc)(scope, receive, send)


class BodyLimit:
    """413 BodyTooLarge for a body over `limit` bytes: from Content-Length at once, else as it streams in.

    A chunked body is counted as the app reads it; past the limit the read raises, and whatever the app
    makes of that (FastAPI's own body parsing turns it into a 400) is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = BodyTooLarge(f"body: larger than {self.limit} bytes")
        if _declared_length(scope) > self.limit:
            await render(too_large)(scope, receive, send)
            return
        seen = 0
        overflowed = answered = False

        async def counted() -> Message:
            nonlocal seen, overflowed
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    overflowed = True
                    raise too_large
            return message

        async def answering(message: Message) -> None:
            nonlocal answered
            if overflowed and not answered:
                return  # the app's answer to the failed read; the 413 below goes instead
            answered = True
            await send(message)

        try:
            await self.app(scope, counted, answering)
        except Exception:
            if not overflowed or answered:
                raise
        if overflowed and not answered:
            await render(too_large)(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1


class RequestObserver(Protocol):
    """Where an app's request metrics go."""

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""


class RequestMetrics:
    """Every request observed by route template (bounded labels, never raw ids), method, status, latency.

    A request whose client hung up before the answer started counts as 499, not as a server error.
    """

    def __init__(self, app: ASGIApp, observer: RequestObserver) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        gone = False

        async def receiving() -> Message:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect" and status is None:
                gone = True
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            # No answer yet means an exception on its way to the error layer, which answers 500.
            answered = CLIENT_CLOSED if gone else (status or 500)
            self.observer.observe(route, scope["method"], answered, time.perf_counter() - started)
