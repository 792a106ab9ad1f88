"""`OpenSearchEngine`: the search port on opensearch-py's `AsyncOpenSearch` (built by search.client).

It holds two clients of the same host list: `reads` retries a call that reached no node (or got 502/503/504)
on another node; `writes` does not, and the port sends a write again only when no node received it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import aiohttp
import opensearchpy
from opensearchpy import AsyncOpenSearch

from search.errors import (
    IndexNotFound,
    SearchError,
    SearchFailed,
    SearchUnavailable,
    ShardsFailed,
    opensearch_errors,
)
from search.port import BULK_TIMEOUT_SECONDS, MERGE_TIMEOUT_SECONDS
from search.requests import (
    Body,
    BulkAction,
    FallbackQuery,
    PopularQuery,
    VersionedKnnQuery,
    alias_swap_body,
    bulk_body,
    clear_fields_body,
    create_index_body,
    exact_body,
    fallback_body,
    ids_page_body,
    knn_body,
    meta_body,
    mget_body,
    popular_body,
    put_mapping_body,
    refresh_interval_body,
    replicas_body,
)
from search.results import (
    BulkReport,
    IndexStats,
    ScoredItem,
    ShardCopy,
    broadcast_failures,
    hits_of,
    id_digest,
    incomplete_search,
    knn_plugin_problems,
    mget_failures,
    parse_alias_targets,
    parse_bulk_items,
    parse_index_stats,
    parse_node_cpu,
    parse_scored_hits,
    parse_shard_copies,
    parse_vector_hits,
    unavailable_shards,
    update_by_query_failures,
)
from search.templates import IndexLayout

# Only what the parsers read (error and status for the error mapping, `_shards` and `timed_out` to tell a
# whole answer from a partial one): less to write, send and parse.
SHARDS: Final = "_shards.total,_shards.successful,_shards.skipped,_shards.failed,_shards.failures,timed_out"
HITS_ONLY: Final = f"hits.hits._id,hits.hits._score,hits.hits._source,{SHARDS},error,status"
IDS_ONLY: Final = f"hits.hits._id,hits.hits.sort,{SHARDS},error,status"
DOCS_ONLY: Final = "docs._id,docs._source,docs.found,docs.error,error,status"
BULK_ITEMS_ONLY: Final = "items.*.status,items.*.error,error,status"
COPIES: Final = "index,shard,prirep,state,node,docs"
GREEN_MARGIN_SECONDS: Final = 10.0  # the client waits this much longer than the server-side health wait
PARTIAL_ATTEMPTS: Final = 2  # a partial answer is asked for once more before it is reported


class OpenSearchEngine:
    """The search port over a reading and a writing `AsyncOpenSearch`; use it from one event loop."""

    def __init__(self, reads: AsyncOpenSearch, writes: AsyncOpenSearch, nodes: int = 1) -> None:
        self._reads = reads
        self._writes = writes
        self._nodes = nodes

    async def aclose(self) -> None:
        """Close the connections to every node."""
        for client in (self._reads, self._writes):
            await client.close()
            # The client closes the nodes it deems alive only; one marked dead keeps its session open.
            # (One host has a pool that never marks it dead, and no `orig_connections`.)
            for connection in getattr(client.transport.connection_pool, "orig_connections", ()):
                await connection.close()

    async def _write(self, action: str, call: Callable[..., Awaitable[Any]], **params: Any) -> Any:
        """`call(**params)` (a write); sent again, to the next node, only when no node ever received it.

        A refused connection sent nothing (the client marks that node dead and picks another); a
        connection lost mid-request may have been applied, so that is the caller's to decide.
        """
        for attempt in range(self._nodes):
            with opensearch_errors(action):
                try:
                    return await call(**params)
                except opensearchpy.ConnectionError as exc:
                    if attempt + 1 == self._nodes or not isinstance(exc.info, aiohttp.ClientConnectorError):
                        raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    # --- searches ---

    async def _whole(
        self,
        action: str,
        index: str,
        call: Callable[[], Awaitable[Any]],
        partial: Callable[[Any], Sequence[ScoredItem]] = lambda _response: (),
    ) -> Any:
        """`call()`'s response once every shard answered it, else ShardsFailed carrying `partial(response)`.

        A partial answer is asked for again, once: a copy lost between a search's query and fetch phases
        fails its shard though another copy lives, and the next search is sent to that one. So is a 500
        (SearchFailed): a search in flight on a node as it dies fails whole on the node coordinating it.
        """
        why = ""
        for attempt in range(PARTIAL_ATTEMPTS):
            try:
                with opensearch_errors(f"{action} on {index}"):
                    response = await call()
            except SearchFailed:
                if attempt + 1 == PARTIAL_ATTEMPTS:
                    raise
                continue
            incomplete = incomplete_search(response)
            if incomplete is None:
                return response
            why = incomplete
        if "shard " not in why:
            # A shard with no copy left is counted, not listed: name it from the shard table.
            why += await self._unavailable(index)
        raise ShardsFailed(f"{action} on {index}: partial answer, {why}", partial(response))

    async def _search(
        self,
        action: str,
        index: str,
        body: Body,
        partial: Callable[[Any], Sequence[ScoredItem]] = lambda _response: (),
        filter_path: str = HITS_ONLY,
    ) -> Any:
        async def call() -> Any:
            return await self._reads.search(index=index, body=body, filter_path=filter_path)

        return await self._whole(action, index, call, partial)

    async def _unavailable(self, index: str) -> str:
        try:
            with opensearch_errors(f"list the shard copies of {index}"):
                # This node's own view: it answers even while the cluster elects a new manager.
                rows = await self._reads.cat.shards(index=index, format="json", h=COPIES, local=True)
            missing = unavailable_shards(parse_shard_copies(rows))
        except SearchError:
            return " (which shards: the shard table did not answer)"
        return f"; no started copy of {', '.join(missing)}" if missing else ""

    async def knn(self, query: VersionedKnnQuery) -> list[ScoredItem]:
        """Approximate, versioned k-NN under the query's filters (scores on the model's similarity)."""
        # The version check holds for a partial answer's hits too.
        hits = functools.partial(_vector_hits, query)
        response = await self._search("k-NN search", query.location.index, knn_body(query), hits)
        return parse_vector_hits(response, query)

    async def exact(self, query: VersionedKnnQuery) -> list[ScoredItem]:
        """Exact (brute-force) scoring of the same query: the reference for recall checks."""
        hits = functools.partial(_vector_hits, query)
        response = await self._search("exact k-NN search", query.location.index, exact_body(query), hits)
        return parse_vector_hits(response, query)

    async def fallback(self, query: FallbackQuery) -> list[ScoredItem]:
        """Items without a vector of the query's version, content + popularity scored."""
        body = fallback_body(query)
        response = await self._search("fallback search", query.location.index, body, parse_scored_hits)
        return parse_scored_hits(response)

    async def popular(self, query: PopularQuery) -> list[ScoredItem]:
        """The most popular items under the query's filters."""
        body = popular_body(query)
        response = await self._search("popularity search", query.index, body, parse_scored_hits)
        return parse_scored_hits(response)

    async def get_items(self, index: str, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """Documents by id (real-time, no refresh needed); ids not found are absent."""
        if not ids:
            return {}
        action = f"read back {len(ids)} documents from {index}"
        for _ in range(PARTIAL_ATTEMPTS):  # a document unreadable for a lost copy is asked for again, once
            with opensearch_errors(action):
                response = await self._reads.mget(index=index, body=mget_body(ids), filter_path=DOCS_ONLY)
            why = mget_failures(response)
            if why is None:
                return {
                    str(doc["_id"]): doc["_source"] for doc in response.get("docs", []) if doc.get("found")
                }
        raise ShardsFailed(f"{action}: {why}")

    async def count(self, index: str, body: Body | None = None) -> int:
        """Documents matching a count body (search.requests.count_body and kin), or all of them."""

        async def call() -> Any:
            return await self._reads.count(index=index, body=body or {"query": {"match_all": {}}})

        return int((await self._whole("count", index, call))["count"])

    async def iter_item_ids(
        self, index: str, query: Body | None = None, page_size: int = 5000
    ) -> AsyncIterator[str]:
        """Every document id of an index (or those matching `query`), in id order."""
        after: str | None = None
        while True:
            body = ids_page_body(page_size, after, query)
            response = await self._search("list ids", index, body, filter_path=IDS_ONLY)
            hits = hits_of(response)
            for hit in hits:
                yield str(hit["_id"])
            if len(hits) < page_size:
                return
            after = str(hits[-1]["sort"][0])

    async def index_id_digest(self, index: str) -> tuple[int, str]:
        """(count, search.results.id_digest) of every document id in an index."""
        ids = [item_id async for item_id in self.iter_item_ids(index)]
        return len(ids), id_digest(ids)

    async def ping(self) -> bool:
        """Whether the cluster answers its health endpoint."""
        try:
            with opensearch_errors("cluster health"):
                await self._reads.cluster.health()
        except SearchError:
            return False
        return True

    async def cluster_problems(self) -> list[str]:
        """What keeps the cluster from holding our indices, each naming its node (empty: none)."""
        with opensearch_errors("read the nodes' plugins"):
            info = await self._reads.nodes.info(
                metric="plugins",
                filter_path="nodes.*.name,nodes.*.transport_address,nodes.*.roles,nodes.*.plugins.name",
            )
        return knn_plugin_problems(info)

    # --- indices, aliases, templates ---

    async def create_index(
        self,
        index: str,
        vector_properties: Mapping[str, Any],
        ef_search: int,
        build_meta: Mapping[str, Any] | None = None,
        layout: IndexLayout | None = None,
    ) -> None:
        """Create an items index with the given vector slots (a bulk-load build with `build_meta`)."""
        await self._write(
            f"create index {index}",
            self._writes.indices.create,
            index=index,
            body=create_index_body(vector_properties, ef_search, build_meta, layout),
        )

    async def finish_build(self, index: str) -> None:
        """Turn refresh back on and refresh, so everything written is visible to search."""
        await self._write(
            f"finish build of {index}",
            self._writes.indices.put_settings,
            index=index,
            body=refresh_interval_body("1s"),
        )
        await self.refresh(index)

    async def force_merge(self, index: str, segments: int = 1) -> None:
        """Merge segments: fewer HNSW graphs to search, so faster queries and better recall per ef_search."""
        action = f"force-merge {index}"
        response = await self._write(
            action,
            self._writes.indices.forcemerge,
            index=index,
            max_num_segments=segments,
            request_timeout=MERGE_TIMEOUT_SECONDS,
        )
        _no_failed_copy(action, response)

    async def start_merge(self, index: str, segments: int | None = None) -> str:
        """Start a merge in the background and return its task id: down to `segments` per shard, or with
        None an expunge of deleted documents."""
        goal: dict[str, Any] = (
            {"only_expunge_deletes": True} if segments is None else {"max_num_segments": segments}
        )
        response = await self._write(
            f"merge of {index}",
            self._writes.indices.forcemerge,
            index=index,
            wait_for_completion=False,
            **goal,
        )
        return str(response["task"])

    async def index_stats(self, index: str) -> IndexStats:
        """Segments, documents, deleted documents, bytes and running merges of an index's primaries."""
        with opensearch_errors(f"stats of {index}"):
            response = await self._reads.indices.stats(index=index, metric="docs,segments,store,merge")
        return parse_index_stats(response)

    async def node_cpu_percent(self) -> int:
        """The CPU use (percent) of the busiest node now (node stats)."""
        with opensearch_errors("stats of the nodes"):
            response = await self._reads.nodes.stats(metric="os")
        return parse_node_cpu(response)

    async def set_replicas(self, index: str, replicas: int) -> None:
        """Give each shard of an index `replicas` copies besides its primary (started in the background)."""
        await self._write(
            f"set {replicas} replicas of {index}",
            self._writes.indices.put_settings,
            index=index,
            body=replicas_body(replicas),
        )

    async def wait_green(self, index: str, timeout_seconds: float) -> bool:
        """Wait until every copy of every shard of an index has started; False when the time ran out."""
        with opensearch_errors(f"wait for every copy of {index}"):
            # The server holds the call until green or its timeout; past that it answers 408, timed_out.
            health = await self._reads.cluster.health(
                index=index,
                wait_for_status="green",
                timeout=f"{max(1, round(timeout_seconds * 1000))}ms",
                request_timeout=timeout_seconds + GREEN_MARGIN_SECONDS,
                ignore=408,
            )
        return health.get("status") == "green" and not health.get("timed_out")

    async def shard_copies(self, index: str) -> list[ShardCopy]:
        """Every copy of every shard of an index: primary or replica, state, node and documents."""
        with opensearch_errors(f"list the shard copies of {index}"):
            rows = await self._reads.cat.shards(index=index, format="json", h=COPIES)
        return parse_shard_copies(rows)

    async def set_index_meta(self, index: str, meta: Mapping[str, Any]) -> None:
        """Replace the `_meta` of an index's mapping."""
        await self._write(
            f"write mapping _meta of {index}",
            self._writes.indices.put_mapping,
            index=index,
            body=meta_body(meta),
        )

    async def add_vector_slots(self, index: str, vector_properties: Mapping[str, Any]) -> None:
        """Add vector slot fields to an existing index (a new type in the live index)."""
        await self._write(
            f"add vector slots to {index}",
            self._writes.indices.put_mapping,
            index=index,
            body=put_mapping_body(vector_properties),
        )

    async def index_exists(self, index: str) -> bool:
        """Whether an index or alias of that name exists."""
        with opensearch_errors(f"check index {index}"):
            return bool(await self._reads.indices.exists(index=index))

    async def list_indices(self, pattern: str) -> list[str]:
        """Concrete index names matching a wildcard pattern, sorted."""
        with opensearch_errors(f"list indices {pattern}"):
            found = await self._reads.indices.get(
                index=pattern, expand_wildcards="all", ignore_unavailable=True
            )
        return sorted(found)

    async def delete_index(self, index: str) -> bool:
        """Delete an index; False when it did not exist."""
        try:
            await self._write(f"delete index {index}", self._writes.indices.delete, index=index)
        except IndexNotFound:
            return False
        return True

    async def refresh(self, index: str) -> None:
        """Make every write so far visible to search."""
        action = f"refresh {index}"
        response = await self._write(action, self._writes.indices.refresh, index=index)
        _no_failed_copy(action, response)

    async def alias_targets(self, alias: str) -> list[str]:
        """The indices an alias points at (empty when the alias does not exist)."""
        try:
            with opensearch_errors(f"read alias {alias}"):
                response = await self._reads.indices.get_alias(name=alias)
        except IndexNotFound:
            # A missing alias answers 404 with an error body, not a map of indices: nothing to parse.
            return []
        return parse_alias_targets(response, alias)

    async def swap_alias(self, alias: str, new_index: str) -> list[str]:
        """Point `alias` at `new_index` only, atomically; returns the indices it pointed at before."""
        previous = await self.alias_targets(alias)
        await self._write(
            f"swap alias {alias} to {new_index}",
            self._writes.indices.update_aliases,
            body=alias_swap_body(alias, new_index, previous),
        )
        return previous

    async def put_index_template(self, name: str, body: Body) -> None:
        """Install (or replace) a composable index template."""
        await self._write(
            f"install index template {name}",
            self._writes.indices.put_index_template,
            name=name,
            body=body,
        )

    async def index_template(self, name: str) -> Mapping[str, Any] | None:
        """An installed composable index template's body, None when there is none of that name."""
        try:
            with opensearch_errors(f"read index template {name}"):
                response = await self._reads.indices.get_index_template(name=name)
        except IndexNotFound:
            return None
        found = response.get("index_templates", [])
        return dict(found[0]["index_template"]) if found else None

    # --- writes ---

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
        """Send bulk actions, check every item, retry rejected (429) ones with exponential back-off."""
        params = {} if wait_for_active_shards is None else {"wait_for_active_shards": wait_for_active_shards}
        pending = list(actions)
        succeeded: list[str] = []
        failed: dict[str, str] = {}
        retries = 0
        for attempt in range(max_retries + 1):
            if not pending:
                break
            if attempt:
                await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
                retries += 1
            try:
                response = await self._write(
                    f"bulk write of {len(pending)} actions",
                    self._writes.bulk,
                    body=bulk_body(pending),
                    refresh="true" if refresh else "false",
                    request_timeout=timeout_seconds,
                    filter_path=BULK_ITEMS_ONLY,
                    params=params,
                )
            except SearchUnavailable as exc:
                # A whole request that found no node, or a 429/503, is sent again like per-item 429s
                # (each action names its document: the same state is written); a last failure names every id.
                if attempt == max_retries:
                    failed.update({action.item_id: str(exc) for action in pending})
                    pending = []
                continue
            written, rejected, pending = parse_bulk_items(
                pending, response["items"], retry_rejected=attempt < max_retries
            )
            succeeded += written
            failed.update(rejected)
        return BulkReport(tuple(succeeded), failed, retries)

    async def clear_fields(self, index: str, fields: Sequence[str]) -> int:
        """Remove `fields` from every document of `index` holding one, refreshed; returns how many changed."""
        action = f"clear {', '.join(fields)} in {index}"
        reply = await self._write(
            action,
            self._writes.update_by_query,
            index=index,
            body=clear_fields_body(fields),
            conflicts="proceed",
            refresh=True,
            request_timeout=MERGE_TIMEOUT_SECONDS,
        )
        why = update_by_query_failures(reply)
        if why is not None:
            raise ShardsFailed(f"{action}: {why}")
        return int(reply["updated"])


def _vector_hits(query: VersionedKnnQuery, response: Mapping[str, Any]) -> list[ScoredItem]:
    return parse_vector_hits(response, query)


def _no_failed_copy(action: str, response: Mapping[str, Any]) -> None:
    """Raise ShardsFailed when a broadcast call (refresh, force-merge) failed on some shard copy."""
    why = broadcast_failures(response)
    if why is not None:
        raise ShardsFailed(f"{action}: {why}")
