"""OpenAPI for errors: each route's error statuses with the names they carry, all as ErrorBody."""

from __future__ import annotations

from typing import Any

from contract.wire import ErrorBody
from service.errors import ServiceError


def documented(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses`: each status with the error names it may carry."""
    by_status: dict[int, set[str]] = {}
    for error in errors:
        by_status.setdefault(error.status, set()).add(error.name)
    return {
        status: {"model": ErrorBody, "description": " | ".join(sorted(names))}
        for status, names in sorted(by_status.items())
    }
