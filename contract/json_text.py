"""Strict JSON text, as every Lockstep input is read: each key once per object, no lone surrogates.

Parsers disagree on which of two equal keys wins, so neither does: the writer says what it means. A lone
surrogate (only a \\u escape can make one; UTF-8 cannot) is not text, and Redis could not store it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class RepeatedKeyError(ValueError):
    """A key appears more than once in one JSON object."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class LoneSurrogateError(ValueError):
    """A string holds a lone surrogate escape (\\ud800-\\udfff)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    made = dict(pairs)
    if len(made) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RepeatedKeyError(key)
            seen.add(key)
    return made


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if _SURROGATE.search(current):
                return True
        elif isinstance(current, dict):
            stack.extend(current)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object)  # json.loads with a hook builds one per call


def strict_loads(text: str) -> Any:
    """`json.loads` refusing repeated keys (RepeatedKeyError) and lone surrogates (LoneSurrogateError).

    Its own errors pass through: json.JSONDecodeError, RecursionError (nested too deep), ValueError (an
    integer literal longer than Python converts).
    """
    if text.startswith("\ufeff"):  # as json.loads refuses it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    value = _DECODER.decode(text)
    if "\\u" in text and _has_surrogate(value):
        raise LoneSurrogateError(
            "a string holds a lone surrogate escape (\\ud800-\\udfff), which is not text"
        )
    return value
