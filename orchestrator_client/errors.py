"""What an orchestrator call raises: a class per wire `error` name; OrchestratorUnavailable for outages."""

# The class names are the orchestrator's wire `error` names (e.g. UnknownType), so no "Error" suffix.
# ruff: noqa: N818

from __future__ import annotations


class OrchestratorCallError(Exception):
    """Base of every error an orchestrator call raises; `detail` is the orchestrator's own (or ours)."""

    def __init__(self, message: str, *, detail: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message
        self.status = status  # the HTTP status answered, None when none was


class OrchestratorUnavailable(OrchestratorCallError):
    """No usable answer: unreachable, timed out, or failed on its side (5xx); retrying later may help."""


class RedisUnavailable(OrchestratorUnavailable):
    """The orchestrator's Redis is down or too slow."""


class CorruptData(OrchestratorUnavailable):
    """The orchestrator read stored data that breaks the contract (a bug upstream)."""


class OrchestratorRefused(OrchestratorCallError):
    """The orchestrator answered a 4xx: the call itself is wrong, retrying it unchanged will not help."""


class InvalidField(OrchestratorRefused):
    """A request field failed validation; the detail names it."""


class Unauthorized(OrchestratorRefused):
    """No API key, or one the orchestrator does not know."""


class Forbidden(OrchestratorRefused):
    """The key's role may not call this route."""


class BodyTooLarge(OrchestratorRefused):
    """The request body exceeds the orchestrator's size limit."""


class NotFound(OrchestratorRefused):
    """No such route."""


class MethodNotAllowed(OrchestratorRefused):
    """The route does not take this method."""


class UnknownType(OrchestratorRefused):
    """No embedding type of that name is registered."""


class UnknownVersion(OrchestratorRefused):
    """The version is not published for that type."""


class UnknownUser(OrchestratorRefused):
    """The user has no vector and no profile in the version in use."""


class NoAttributesFound(OrchestratorRefused):
    """None of the attributes has a vector in the version: nothing to aggregate."""


class NoVersionInUse(OrchestratorRefused):
    """The type has no in_use version yet."""


class InUseConflict(OrchestratorRefused):
    """Compare-and-set lost: in_use is not the version the caller expected."""


class NotPublished(OrchestratorRefused):
    """The target version is not published."""


class NotIndexed(OrchestratorRefused):
    """The target version is not recorded as fully indexed."""


class NoRollbackTarget(OrchestratorRefused):
    """No earlier version is both published and indexed."""


class VersionInUse(OrchestratorRefused):
    """The version is in use, so its index record may not be dropped."""


BY_NAME: dict[str, type[OrchestratorCallError]] = {
    error.__name__: error
    for error in (
        RedisUnavailable,
        CorruptData,
        InvalidField,
        Unauthorized,
        Forbidden,
        BodyTooLarge,
        NotFound,
        MethodNotAllowed,
        UnknownType,
        UnknownVersion,
        UnknownUser,
        NoAttributesFound,
        NoVersionInUse,
        InUseConflict,
        NotPublished,
        NotIndexed,
        NoRollbackTarget,
        VersionInUse,
    )
}


def error_for(status: int, name: str) -> type[OrchestratorCallError]:
    """The class of an error answer: by its wire name, else by its status (5xx: unavailable)."""
    known = BY_NAME.get(name)
    if status >= 500:
        return (
            known
            if known is not None and issubclass(known, OrchestratorUnavailable)
            else OrchestratorUnavailable
        )
    return known if known is not None and issubclass(known, OrchestratorRefused) else OrchestratorRefused
