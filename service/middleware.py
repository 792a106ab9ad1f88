"""The middleware both apps run, pure ASGI (no per-request task as in BaseHTTPMiddleware)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.wire import MAX_BODY_BYTES
from service.errors import BodyTooLarge, ServiceError, UnsupportedMediaType
from service.json_body import PARSED, parse_json
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


class BodyCheck:
    """A request body is JSON (415 UnsupportedMediaType), at most `limit` bytes (413), and strict JSON.

    The content type and a declared Content-Length are checked before the app runs. The body itself is
    checked as the app reads it (never read ahead of the app, so a route may refuse a request before its
    body arrives): a chunked body is counted as it streams in, and the whole body parsed strictly
    (service.json_body) when it ends, the value left in the scope for the route. When a check fails the
    read raises, and whatever the app makes of that (FastAPI's own body parsing turns it into a 400) is
    replaced by the check's own answer.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        is_json = _has_body(headers)
        up_front = self._refusal(headers, is_json)
        if up_front is not None:
            await render(up_front)(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        refused: ServiceError | None = None
        answered = False

        async def checked() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and refused is None:
                body = message.get("body", b"")
                seen += len(body)
                if seen > self.limit:
                    refused = BodyTooLarge(f"body: larger than {self.limit} bytes")
                    raise refused
                if is_json:
                    chunks.append(body)
                    if not message.get("more_body", False) and seen:
                        try:
                            scope[PARSED] = parse_json(b"".join(chunks))
                        except ServiceError as error:
                            refused = error
                            raise
                        finally:
                            chunks.clear()
            return message

        async def answering(message: Message) -> None:
            nonlocal answered
            if refused is not None and not answered:
                return  # the app's answer to the failed read; the check's answer goes instead
            answered = True
            await send(message)

        try:
            await self.app(scope, checked, answering)
        except Exception:
            if refused is None or answered:
                raise
        if refused is not None and not answered:
            await render(refused)(scope, receive, send)

    def _refusal(self, headers: Mapping[bytes, bytes], has_body: bool) -> ServiceError | None:
        if _declared_length(headers) > self.limit:
            return BodyTooLarge(f"body: larger than {self.limit} bytes")
        if has_body:
            problem = json_media_type_problem(headers.get(b"content-type"))
            if problem is not None:
                return UnsupportedMediaType(f"content-type: {problem}")
        return None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name: value for name, value in scope["headers"]}


def _declared_length(headers: Mapping[bytes, bytes]) -> int:
    value = headers.get(b"content-length", b"")
    return int(value) if value.isdigit() else -1


def _has_body(headers: Mapping[bytes, bytes]) -> bool:
    return _declared_length(headers) > 0 or b"transfer-encoding" in headers


# Clients send few distinct values, and parsing one costs more than the rest of the check (~8k instructions).
@functools.lru_cache(maxsize=256)
def json_media_type_problem(value: bytes | None) -> str | None:
    """Why a Content-Type is not JSON in UTF-8 (None: it is): application/json or application/*+json."""
    if value is None:
        return "missing; a request body must be application/json"
    text = value.decode("latin-1")
    media_type, *params = (part.strip().lower() for part in text.split(";"))
    kind, _, subtype = media_type.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return f"{text[:100]!r} is not JSON; a request body must be application/json"
    for param in params:
        name, _, charset = param.partition("=")
        if name.strip() == "charset" and charset.strip().strip('"') not in ("utf-8", "utf8"):
            return f"{text[:100]!r}: JSON bodies are UTF-8 only"
    return None


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
