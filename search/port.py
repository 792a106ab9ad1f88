"""`SearchEngine`: everything Lockstep asks of a search cluster, as one async protocol.

The indexer and serving hold a `SearchEngine` (built by `search.client.build_client`), never a client
library's object: what a cluster is, and how many hosts it has, stays behind this port. Every method
raises only `search.errors` exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from search.requests import Body, BulkAction, FallbackQuery, PopularQuery, VersionedKnnQuery
from search.results import BulkReport, ScoredItem

BULK_TIMEOUT_SECONDS = 120.0
MERGE_TIMEOUT_SECONDS = 3600.0  # force-merge and update-by-query run for as long as the index needs


class SearchEngine(Protocol):
    """Versioned searches, item reads, index and alias management, bulk writes."""

    # --- searches (serving's request path, the indexer's verification) ---

    async def knn(self, query: VersionedKnnQuery) -> list[ScoredItem]:
        """Approximate, versioned k-NN under the query's filters (scores on the model's similarity)."""

    async def exact(self, query: VersionedKnnQuery) -> list[ScoredItem]:
        """Exact (brute-force) scoring of the same query: the reference for recall checks."""

    async def fallback(self, query: FallbackQuery) -> list[ScoredItem]:
        """Items without a vector of the query's version, content + popularity scored."""

    async def popular(self, query: PopularQuery) -> list[ScoredItem]:
        """The most popular items under the query's filters."""

    async def get_items(self, index: str, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """Documents by id (real-time, no refresh needed); ids not found are absent."""

    async def count(self, index: str, body: Body | None = None) -> int:
        """Documents matching a count body (search.requests.count_body and kin), or all of them."""

    def iter_item_ids(
        self, index: str, query: Body | None = None, page_size: int = 5000
    ) -> AsyncIterator[str]:
        """Every document id of an index (or those matching `query`), in id order."""

    async def index_id_digest(self, index: str) -> tuple[int, str]:
        """(count, search.results.id_digest) of every document id in an index."""

    async def ping(self) -> bool:
        """Whether the cluster answers its health endpoint."""

    # --- indices, aliases, templates (the indexer) ---

    async def create_index(
        self,
        index: str,
        vector_properties: Mapping[str, Any],
        ef_search: int,
        build_meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Create an items index (the template supplies metadata and settings) with the given vector slots.

        With `build_meta` it is a bulk-load build: no refresh until `finish_build`, and `build_meta` as its
        mapping's `_meta`, so a crashed build can be told from a verified one.
        """

    async def finish_build(self, index: str) -> None:
        """Turn refresh back on and refresh, so everything written is visible to search."""

    async def force_merge(self, index: str, segments: int = 1) -> None:
        """Merge segments: fewer HNSW graphs to search, so faster queries and better recall per ef_search."""

    async def set_index_meta(self, index: str, meta: Mapping[str, Any]) -> None:
        """Replace the `_meta` of an index's mapping."""

    async def add_vector_slots(self, index: str, vector_properties: Mapping[str, Any]) -> None:
        """Add vector slot fields to an existing index (a new type in the live index)."""

    async def index_exists(self, index: str) -> bool:
        """Whether an index or alias of that name exists."""

    async def list_indices(self, pattern: str) -> list[str]:
        """Concrete index names matching a wildcard pattern, sorted."""

    async def delete_index(self, index: str) -> bool:
        """Delete an index; False when it did not exist."""

    async def refresh(self, index: str) -> None:
        """Make every write so far visible to search."""

    async def alias_targets(self, alias: str) -> list[str]:
        """The indices an alias points at (empty when the alias does not exist)."""

    async def swap_alias(self, alias: str, new_index: str) -> list[str]:
        """Point `alias` at `new_index` only, atomically; returns the indices it pointed at before."""

    async def put_index_template(self, name: str, body: Body) -> None:
        """Install (or replace) a composable index template."""

    async def index_template(self, name: str) -> Mapping[str, Any] | None:
        """An installed composable index template's body, None when there is none of that name."""

    # --- writes (the indexer) ---

    async def bulk_write(
        self,
        actions: Sequence[BulkAction],
        *,
        refresh: bool = False,
        max_retries: int = 5,
        backoff_seconds: float = 0.2,
        timeout_seconds: float = BULK_TIMEOUT_SECONDS,
    ) -> BulkReport:
        """Send bulk actions, check every item, retry rejected (429) ones with exponential back-off."""

    async def clear_fields(self, index: str, fields: Sequence[str]) -> int:
        """Remove `fields` from every document of `index` holding one, refreshed; returns how many changed.

        A document written concurrently is skipped (conflicts proceed), not failed: a later call finds it.
        """

    async def aclose(self) -> None:
        """Close the connections."""
