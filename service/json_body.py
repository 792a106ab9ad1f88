"""Request bodies as strict JSON: UTF-8, each key once per object, no lone surrogates.

NaN, Infinity and 1e999 still parse (to floats), so the model's validation names the field that holds
them ("attributes[0].weight: must be finite") rather than the whole body being refused.
"""

from __future__ import annotations

import json
from typing import Any

from contract.json_text import LoneSurrogateError, RepeatedKeyError, strict_loads
from service.errors import BadRequest, InvalidField
from service.validation import not_json

PARSED = "lockstep.json_body"  # the scope key service.middleware.BodyCheck leaves the parsed body under


def _key(key: str) -> str:
    return key if len(key) <= 64 and key.isprintable() else repr(key[:64])


def parse_json(raw: bytes) -> Any:
    """The body's JSON value; BadRequest when it is not JSON text, InvalidField for a repeated key."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"body: not UTF-8 ({error.reason} at byte {error.start})") from error
    try:
        return strict_loads(text)
    except RepeatedKeyError as error:
        raise InvalidField(f"{_key(error.key)}: the key appears more than once in one JSON object") from error
    except LoneSurrogateError as error:
        raise BadRequest(f"body: {error}") from error
    except json.JSONDecodeError as error:
        raise BadRequest(not_json(error.msg, error.pos)) from error
    except RecursionError as error:
        raise BadRequest("body: not valid JSON (nested deeper than the parser's stack)") from error
    except ValueError as error:  # an integer literal longer than Python converts (4,300 digits)
        raise BadRequest(f"body: not valid JSON ({error})") from error
