"""Serving's errors: service's shared ones, and its own, each carrying its HTTP status."""

# The class names are the wire `error` names (e.g. UnknownItem), so no "Error" suffix.
# ruff: noqa: N818

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from contract.errors import ErrorName
from search.errors import QueryRejected
from service.errors import BadRequest as BadRequest
from service.errors import Forbidden as Forbidden
from service.errors import InvalidField as InvalidField
from service.errors import ServiceError
from service.errors import Unauthorized as Unauthorized
from service.validation import describe_validation as describe_validation


class ServingError(ServiceError):
    """Base of serving's own errors."""

    name = ErrorName.INTERNAL_ERROR  # a base, not a wire name of its own


class UnknownType(ServingError):
    """The embedding type does not exist."""

    status = 404


class UnknownItem(ServingError):
    """The item is not in the index, or has no vector of the in-use version."""

    status = 404


class NotServable(ServingError):
    """The type has no in-use, indexed version yet."""

    status = 409


class Unavailable(ServingError):
    """A dependency is down and nothing usable is cached; retry later."""

    status = 503
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": "2"}


def refused_filters(exc: QueryRejected, filters: object | None) -> Exception:
    """OpenSearch's 400 as the client's error when the request had filters (the likely cause, were one to
    get past contract.filters' validation); without filters it is our own bug, so it stays a 500."""
    if filters is None:
        return exc
    return InvalidField(f"filters: refused by the search engine ({exc.reason.split(': ', 1)[-1]})")
