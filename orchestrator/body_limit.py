"""Refuse request bodies over a size limit before they are buffered or parsed."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import BodyTooLarge, error_body

MAX_BODY_BYTES = 1 << 20  # 1 MiB: ample for MAX_BATCH_ITEMS ids or MAX_ATTRIBUTES weighted attributes


class BodyLimitMiddleware:
    """413 from Content-Length at once; a chunked body is counted as it streams in."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await _refuse(send, self.limit)
                    return
                break
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Raised inside the route's body read, so the app's error handler renders it.
                    raise BodyTooLarge(f"body: larger than {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps(error_body("BodyTooLarge", f"body: larger than {limit} bytes"))
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
