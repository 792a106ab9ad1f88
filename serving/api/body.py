"""Reading a JSON body: NaN/Infinity/1e999 reported against their field (the size limit is middleware)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request

from service.validation import not_json
from serving.errors import BadRequest


async def read_json(request: Request) -> Any:
    """The parsed body; refuses an empty or non-JSON one."""
    raw = await request.body()
    if not raw:
        raise BadRequest("body: empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as strict_error:
        # orjson refuses NaN, Infinity and 1e999 outright; the stdlib parses them to floats, so the model's
        # validation can name the field that holds them ("attributes[0].weight: must be finite").
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            # FastAPI parses with the stdlib too, so this is the orchestrator's wording as well.
            raise BadRequest(not_json(error.msg, error.pos)) from error
        except (ValueError, RecursionError):  # not UTF-8, or nested deeper than the parser's stack
            raise BadRequest(f"body: not valid JSON ({strict_error})") from strict_error
