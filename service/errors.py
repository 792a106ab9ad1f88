"""The base of every error a service answers with, and the errors both services share."""

# The class names are the wire `error` names (e.g. BodyTooLarge), so no "Error" suffix.
# ruff: noqa: N818

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from contract.errors import ErrorName


class ServiceError(Exception):
    """An error answered as `{"error": name, "detail": detail}` with `status` and `headers`."""

    name: ClassVar[ErrorName] = ErrorName.INTERNAL_ERROR
    status: ClassVar[int] = 500
    headers: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            # A class is named after its wire name, so an error missing from ErrorName fails at import.
            cls.name = ErrorName(cls.__name__)

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail  # what went wrong, starting with the field it is about


class BadRequest(ServiceError):
    """The body is not JSON."""

    status = 400


class Unauthorized(ServiceError):
    """No API key, or one we do not know."""

    status = 401
    headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}


class Forbidden(ServiceError):
    """A known key whose role may not call this route."""

    status = 403


class BodyTooLarge(ServiceError):
    """The request body exceeds contract.wire.MAX_BODY_BYTES."""

    status = 413


class UnsupportedMediaType(ServiceError):
    """A request body that is not application/json (UTF-8)."""

    status = 415


class InvalidField(ServiceError):
    """A request field failed validation; the detail names it."""

    status = 422


class Overloaded(ServiceError):
    """The process already works on its maximum of requests: refused at once rather than queued."""

    status = 503
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": "1"}
