"""The orchestrator's exception tree: each class carries its HTTP status; one handler renders them all."""

# The class names are the wire `error` names (e.g. UnknownType), so no "Error" suffix.
# ruff: noqa: N818

from __future__ import annotations

from typing import Any, ClassVar

from contract.wire import ErrorBody


class OrchestratorError(Exception):
    """Base of every error the orchestrator answers with; `detail` says what and which field."""

    status: ClassVar[int] = 500
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def name(self) -> str:
        """The `error` field of the body."""
        return type(self).__name__


class InvalidRequest(OrchestratorError):
    """A request field failed validation."""

    status = 422


class Unauthorized(OrchestratorError):
    """No API key, or one we do not know."""

    status = 401
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class Forbidden(OrchestratorError):
    """A known key whose role may not call this route."""

    status = 403


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


class BodyTooLarge(OrchestratorError):
    """The request body exceeds the size limit."""

    status = 413


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


class CorruptData(OrchestratorError):
    """Stored data does not match the contract (a bug upstream, not the caller's fault)."""

    status = 500


class RedisUnavailable(OrchestratorError):
    """Redis is down or too slow; the caller should retry shortly."""

    status = 503
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}


def error_body(name: str, detail: str) -> dict[str, str]:
    """The JSON body of every error."""
    return {"error": name, "detail": detail}


def documented(*errors: type[OrchestratorError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: each status with the error names it may carry."""
    by_status: dict[int, list[str]] = {}
    every: tuple[type[OrchestratorError], ...] = (*errors, InvalidRequest, RedisUnavailable)
    for error in every:
        by_status.setdefault(error.status, []).append(error.__name__)
    return {
        status: {"model": ErrorBody, "description": " | ".join(sorted(set(names)))}
        for status, names in sorted(by_status.items())
    }
