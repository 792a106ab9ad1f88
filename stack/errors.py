"""The one exception the local stack raises: its message says what failed and where to look."""

from __future__ import annotations


class StackError(RuntimeError):
    """The local OpenSearch/Redis stack could not be installed, started, reached or stopped."""
