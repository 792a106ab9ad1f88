"""Reading a JSON body safely: a size limit, and NaN/Infinity/1e999 reported against their field."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request

from serving.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 4 * 1024 * 1024  # 10^4 attributes fit easily; 10^5 get the field's own message up to here


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The parsed body; refuses non-JSON and bodies over `limit` bytes without reading them whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body: exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise BadRequest("body: empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as strict_error:
        # orjson refuses NaN, Infinity and 1e999 outright; the stdlib parses them to floats, so the model's
        # validation can name the field that holds them ("attributes.0.weight: must be finite").
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest(f"body: not valid JSON ({strict_error})") from strict_error
