"""The orchestrator's errors: service's shared ones, and its own, each carrying its HTTP status."""

# The class names are the wire `error` names (e.g. UnknownType), so no "Error" suffix.
# ruff: noqa: N818

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from contract.errors import ErrorName
from service.errors import BodyTooLarge as BodyTooLarge
from service.errors import Forbidden as Forbidden
from service.errors import InvalidField as InvalidField
from service.errors import ServiceError
from service.errors import Unauthorized as Unauthorized
from service.openapi import documented as documented_errors


class OrchestratorError(ServiceError):
    """Base of the orchestrator's own errors (the catalog's poller catches them all)."""

    name = ErrorName.INTERNAL_ERROR  # a base, not a wire name of its own


class UnknownType(OrchestratorError):
    """No embedding type of that name is registered."""

    status = 404


class UnknownVersion(OrchestratorError):
    """The version is not published for that type."""

    status = 404


class UnknownUser(OrchestratorError):
    """The user has no vector (direct) or no profile (indirect) in the version in use."""

    status = 404


class NoAttributesFound(OrchestratorError):
    """None of the given attributes has a vector in the version, so there is nothing to aggregate."""

    status = 422


class NoVersionInUse(OrchestratorError):
    """The type has no in_use version yet."""

    status = 409


class InUseConflict(OrchestratorError):
    """Compare-and-set lost: in_use is not the version the caller expected."""

    status = 409


class NotPublished(OrchestratorError):
    """The target version has no manifest (it is not published)."""

    status = 409


class NotIndexed(OrchestratorError):
    """The target version is not recorded as fully indexed and visible."""

    status = 409


class NoRollbackTarget(OrchestratorError):
    """No earlier version is both published and indexed."""

    status = 409


class VersionInUse(OrchestratorError):
    """The version is in use, so its index record may not be dropped."""

    status = 409


class UnknownItem(OrchestratorError):
    """The catalog holds no item of that id."""

    status = 404


class CatalogSchemaChanged(OrchestratorError):
    """The catalog was written under another item schema than this orchestrator's (the detail says how)."""

    status = 409


class CorruptData(OrchestratorError):
    """Stored data does not match the contract (a bug upstream, not the caller's fault)."""

    status = 500


class RedisUnavailable(OrchestratorError):
    """Redis is down or too slow; the caller should retry shortly."""

    status = 503
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": "1"}


def documented(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of a route: its errors, and the validation and Redis errors any route may give."""
    return documented_errors(*errors, InvalidField, RedisUnavailable)
