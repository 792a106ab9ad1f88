"""Pydantic validation errors rendered as one `detail` line naming each field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_SHOWN = 5  # errors listed per response; the rest are counted


def field_path(loc: Sequence[int | str]) -> str:
    """('body', 'attributes', 0, 'weight') -> 'attributes[0].weight'; the location kind is dropped."""
    parts = list(loc)
    if parts and parts[0] in {"body", "path", "query", "header"}:
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def describe_validation_error(errors: Sequence[Any]) -> str:
    """'field: message; field: message' for the first few errors."""
    lines = []
    for error in errors[:_SHOWN]:
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":  # its loc is (body, character offset), not a field
            lines.append(f"body: {message} at character {error.get('loc', ('', '?'))[-1]}")
            continue
        lines.append(f"{field_path(error.get('loc', ()))}: {message}")
    if len(errors) > _SHOWN:
        lines.append(f"and {len(errors) - _SHOWN} more")
    return "; ".join(lines)
