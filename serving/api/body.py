"""Reading a JSON body: the value service.middleware.BodyCheck parsed strictly as the body came in."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from service.json_body import PARSED, parse_json
from serving.errors import BadRequest


async def read_json(request: Request) -> Any:
    """The parsed body; refuses an empty one."""
    raw = await _body(request)
    if not raw:
        raise BadRequest("body: empty; expected a JSON object")
    if PARSED in request.scope:
        return request.scope[PARSED]
    return parse_json(raw)  # an app without the middleware (none of ours)


async def _body(request: Request) -> bytes:
    """The whole body as Request.body() reads it, less its async generator and StopAsyncIteration (~20k
    instructions a request)."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
