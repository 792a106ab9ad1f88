"""Id patterns in the two regex dialects they are checked in, from one body each.

Python's `$` also matches before a final newline, so Python checks anchor with `\\Z`; JSON Schema (ECMA)
and pydantic's Rust regex do not know `\\Z`, and there `$` already means the end of the text.
"""

from __future__ import annotations

import re


def python_regex(body: str) -> re.Pattern[str]:
    """The body anchored for Python's `re`: `.match` and `.fullmatch` both take the whole text only."""
    return re.compile(rf"\A(?:{body})\Z")


def schema_pattern(body: str) -> str:
    """The body anchored for OpenAPI / JSON Schema and pydantic `pattern=` (both end the text at `$`)."""
    return f"^(?:{body})$"
