"""Pydantic validation errors as one `detail` line naming each field as `attributes[0].weight`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BeforeValidator

_SHOWN = 5  # errors listed per response; the rest are counted
_DIGITS = re.compile(r"[0-9]{1,9}")
_LOCATIONS = frozenset({"body", "path", "query", "header"})  # FastAPI's first loc element, not a field


def field_path(loc: Sequence[int | str]) -> str:
    """('body', 'attributes', 0, 'weight') -> 'attributes[0].weight'; the location kind is dropped."""
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def describe_validation(errors: Sequence[Mapping[str, Any]]) -> str:
    """'field: message; field: message' for the first few errors."""
    lines = [f"{field_path(error.get('loc', ()))}: {_message(error)}" for error in errors[:_SHOWN]]
    if len(errors) > _SHOWN:
        lines.append(f"and {len(errors) - _SHOWN} more")
    return "; ".join(lines)


def _message(error: Mapping[str, Any]) -> str:
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def not_json(reason: str, position: int) -> str:
    """The detail for a body that is not JSON: the parser's reason and where."""
    return f"body: not valid JSON ({reason} at character {position})"


def malformed_json(errors: Sequence[Mapping[str, Any]]) -> str | None:
    """The detail for a body FastAPI could not parse as JSON, or None when it parsed."""
    for error in errors:
        if error.get("type") == "json_invalid":  # its loc is (body, character offset), not a field
            return not_json(error.get("ctx", {}).get("error", error.get("msg", "invalid")), error["loc"][-1])
    return None


def _ascii_digits(value: object) -> object:
    # pydantic's int from text takes "+10", " 10" and "1_0" too; a query number is its digits and no more.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError(f"must be a whole number written in ASCII digits, got {value[:20]!r}")
    return value


DIGITS_ONLY = BeforeValidator(_ascii_digits)
"""For an integer query parameter, after its Query(...) (before it, FastAPI loses the bounds from the
OpenAPI document): ASCII digits only, no sign, spaces, underscores or other scripts' digits."""
