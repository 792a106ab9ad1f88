"""The indexer's one exception tree: every failure a cycle can report."""

from __future__ import annotations


class IndexerError(Exception):
    """Base of every indexer failure; a cycle that raises it promotes nothing."""


class OrchestratorError(IndexerError):
    """The orchestrator refused a call or was unreachable."""

    def __init__(self, message: str, status: int | None = None, name: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.name = name  # the orchestrator's error name, e.g. InUseConflict, NotIndexed


class InUseConflictError(OrchestratorError):
    """The in_use compare-and-set lost: someone else moved in_use first."""


class LockBusyError(IndexerError):
    """Another indexer cycle holds the lock on this target."""


class VerificationError(IndexerError):
    """A built index failed a check (count, digest, read-back, recall) and must not be promoted."""


class DocumentRejectedError(IndexerError):
    """OpenSearch rejected a document for good (not a 429); names the item."""


class ModeConflictError(IndexerError):
    """A type was asked of one mode while its in_use version is served from the other mode's index."""
