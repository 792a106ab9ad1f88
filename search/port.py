"""`SearchEngine`: everything Lockstep asks of a search cluster, as one async protocol.

The indexer and serving hold a `SearchEngine` (built by `search.client.build_client`), never a client
library's object: what a cluster is, and how many hosts it has, stays behind this port. Every method
raises only `search.errors` exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from search.requests import Body, BulkAction, FallbackQuery, PopularQuery, VersionedKnnQuery
from search.results import BulkReport, IndexStats, ScoredItem, ShardCopy
from search.templates import IndexLayout

BULK_TIMEOUT_SECONDS = 120.0
MERGE_TIMEOUT_SECONDS = 3600.0  # force-merge and update-by-query run for as long as the index needs


class SearchEngine(Protocol):
    """Versioned searches, item reads, index and alias management, bulk writes.

    A search, count or item read that some shard answered for with no copy raises `ShardsFailed` (its
    `partial` holds the hits of the shards that answered): no caller takes an incomplete answer for a whole
    one unawares. Reads that reach no node go to another one of the host list; writes are not retried so.
    """

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

    async def cluster_problems(self) -> list[str]:
        """What keeps the cluster from holding our indices, each naming its node (empty: none).

        Every data node must have the k-NN plugin: any of them may be given a shard of a k-NN index.
        """

    # --- indices, aliases, templates (the indexer) ---

    async def create_index(
        self,
        index: str,
        vector_properties: Mapping[str, Any],
        ef_search: int,
        build_meta: Mapping[str, Any] | None = None,
        layout: IndexLayout | None = None,
    ) -> None:
        """Create an items index (the template supplies metadata and settings) with the given vector slots.

        `layout` sets its shards and replicas (default: the template's). With `build_meta` it is a
        bulk-load build: no refresh until `finish_build` and no replica until `set_replicas`, and
        `build_meta` as its mapping's `_meta`, so a crashed build can be told from a verified one.
        """

    async def finish_build(self, index: str) -> None:
        """Turn refresh back on and refresh, so everything written is visible to search."""

    async def force_merge(self, index: str, segments: int = 1) -> None:
        """Merge segments: fewer HNSW graphs to search, so faster queries and better recall per ef_search."""

    async def start_merge(self, index: str, segments: int | None = None) -> str:
        """Start a merge in the background and return its task id (a live index keeps taking writes and
        searches meanwhile): down to `segments` per shard, or with None, of the segments whose deleted
        documents pass the merge policy's share (an expunge). IndexStats.merging shows it running."""

    async def index_stats(self, index: str) -> IndexStats:
        """Segments, documents, deleted documents and bytes of an index's primaries."""

    async def node_cpu_percent(self) -> int:
        """The CPU use (percent) of the busiest node now (node stats)."""

    async def set_replicas(self, index: str, replicas: int) -> None:
        """Give each shard of an index `replicas` copies besides its primary (started in the background)."""

    async def wait_green(self, index: str, timeout_seconds: float) -> bool:
        """Wait until every copy of every shard of an index has started; False when the time ran out."""

    async def shard_copies(self, index: str) -> list[ShardCopy]:
        """Every copy of every shard of an index: primary or replica, state, node and documents."""

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
        """Make every write so far visible to search (a copy that failed to refresh: ShardsFailed)."""

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
        wait_for_active_shards: str | None = None,
    ) -> BulkReport:
        """Send bulk actions, check every item, retry rejected (429) ones with exponential back-off.

        Every action names its document, so sending one again writes the same state: a whole request
        that found no node is sent again too. `wait_for_active_shards` ("all", or a number of copies)
        holds the writes until that many copies of each shard are active.
        """

    async def clear_fields(self, index: str, fields: Sequence[str]) -> int:
        """Remove `fields` from every document of `index` holding one, refreshed; returns how many changed.

        A document written concurrently is skipped (conflicts proceed), not failed: a later call finds it.
        A shard that failed, or a timeout, raises `ShardsFailed`.
        """

    async def aclose(self) -> None:
        """Close the connections."""
