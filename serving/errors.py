"""Serving's exception tree (each carries its HTTP status) and the one handler that renders them."""

from __future__ import annotations

from typing import ClassVar

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException


class ServingError(Exception):
    """Base of every error serving returns; `status` is the HTTP status."""

    status: ClassVar[int] = 500
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ServingError):  # noqa: N818 - the name is the API's `error` field
    """The request is malformed (body not JSON, too large, wrong shape)."""

    status = 400


class InvalidField(ServingError):  # noqa: N818 - the name is the API's `error` field
    """A field failed validation; the detail names it."""

    status = 422


class UnknownType(ServingError):  # noqa: N818 - the name is the API's `error` field
    """The embedding type does not exist."""

    status = 404


class UnknownItem(ServingError):  # noqa: N818 - the name is the API's `error` field
    """The item is not in the index, or has no vector of the in-use version."""

    status = 404


class NotServable(ServingError):  # noqa: N818 - the name is the API's `error` field
    """The type has no in-use, indexed version yet."""

    status = 409


class PayloadTooLarge(ServingError):  # noqa: N818 - the name is the API's `error` field
    """The body exceeds the size limit."""

    status = 413


class Unavailable(ServingError):  # noqa: N818 - the name is the API's `error` field
    """A dependency is down and nothing usable is cached; retry later."""

    status = 503
    headers: ClassVar[dict[str, str]] = {"Retry-After": "2"}


def error_response(name: str, detail: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """The {"error", "detail"} body every serving error has."""
    return Response(
        orjson.dumps({"error": name, "detail": detail}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def handle_serving_error(_: Request, exc: Exception) -> Response:
    """Render a ServingError."""
    assert isinstance(exc, ServingError)
    return error_response(type(exc).__name__, exc.detail, exc.status, dict(exc.headers) or None)


def describe_validation(errors: list[dict[str, object]]) -> str:
    """One line naming each failing field (pydantic's loc joined with '.') and why."""
    parts = []
    for error in errors[:5]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]  # type: ignore[attr-defined]
        field = ".".join(loc) or "body"
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


async def handle_validation_error(_: Request, exc: Exception) -> Response:
    """FastAPI's own request validation (query/path params) rendered as InvalidField."""
    assert isinstance(exc, RequestValidationError)
    return error_response("InvalidField", describe_validation(list(exc.errors())), 422)


async def handle_http_error(_: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown path, wrong method) in the house error shape."""
    assert isinstance(exc, StarletteHTTPException)
    names = {404: "NotFound", 405: "MethodNotAllowed"}
    name = names.get(exc.status_code, "HTTPError")
    return error_response(name, f"path: {exc.detail}", exc.status_code, dict(exc.headers or {}) or None)


async def handle_unexpected(_: Request, exc: Exception) -> Response:
    """Last resort: never leak a traceback; still the house error shape."""
    return error_response("InternalError", f"{type(exc).__name__}: unexpected error", 500)
