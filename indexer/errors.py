"""The indexer's one exception tree: every failure a cycle can report."""

from __future__ import annotations

from typing import Final

from catalog.store import SchemaChanged
from orchestrator_client.errors import OrchestratorCallError
from search.errors import SearchError


class IndexerError(Exception):
    """Base of every indexer failure; a cycle that raises it promotes nothing."""


class LockBusyError(IndexerError):
    """Another indexer cycle holds the lock on this target."""


class VerificationError(IndexerError):
    """A built index failed a check (count, digest, read-back, recall) and must not be promoted."""


class DocumentRejectedError(IndexerError):
    """OpenSearch rejected a document for good (not a 429); names the item."""


class ClusterError(IndexerError):
    """The search cluster cannot hold an index as asked: a data node lacks k-NN, or copies did not start."""


class CatalogEmptyError(IndexerError):
    """The catalog store holds no item yet: nothing to index."""


class ModeConflictError(IndexerError):
    """A type was asked of one mode while its in_use version is served from the other mode's index."""


# A failed cycle, not a crash: ours, the orchestrator's refusals and outages (orchestrator_client.errors),
# the search cluster's (a node lost mid-cycle, a shard with no copy), and a catalog written under another
# item schema (refused until the deployment's schema file is fixed): a later cycle starts over.
CYCLE_FAILURES: Final = (IndexerError, OrchestratorCallError, SearchError, SchemaChanged)
