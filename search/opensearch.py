"""`OpenSearchEngine`: the search port on opensearch-py's `AsyncOpenSearch` (built by search.client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

from opensearchpy import AsyncOpenSearch

from search.errors import IndexNotFound, SearchError, SearchUnavailable, opensearch_errors
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
)
from search.results import (
    BulkReport,
    ScoredItem,
    hits_of,
    id_digest,
    parse_alias_targets,
    parse_bulk_items,
    parse_scored_hits,
    parse_vector_hits,
)

# Only what the parsers read (error and status for the error mapping): less to write, send and parse.
HITS_ONLY: Final = "hits.hits._id,hits.hits._score,hits.hits._source,error,status"
IDS_ONLY: Final = "hits.hits._id,hits.hits.sort,error,status"
DOCS_ONLY: Final = "docs._id,docs._source,docs.found,error,status"
BULK_ITEMS_ONLY: Final = "items.*.status,items.*.error,error,status"


class OpenSearchEngine:
    """The search port over one `AsyncOpenSearch` client; use it from the event loop that first calls it."""

    def __init__(self, client: AsyncOpenSearch) -> None:
        self._client = client

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.close()

    # --- searches ---

    async def _search(self, action: str, index: str, body: Body, filter_path: str = HITS_ONLY) -> Any:
        with opensearch_errors(f"{action} on {index}"):
            return await self._client.search(index=index, body=body, filter_path=filter_path)

    async def knn(self, query: VersionedKnnQuery) -> list[ScoredItem]:
        """Approximate, versioned k-NN under the query's filters (scores on the model's similarity)."""
        response = await self._search("k-NN search", query.location.index, knn_body(query))
        return parse_vector_hits(response, query)

    async def exact(self, query: VersionedKnnQuery) -> list[ScoredItem]:
        """Exact (brute-force) scoring of the same query: the reference for recall checks."""
        response = await self._search("exact k-NN search", query.location.index, exact_body(query))
        return parse_vector_hits(response, query)

    async def fallback(self, query: FallbackQuery) -> list[ScoredItem]:
        """Items without a vector of the query's version, content + popularity scored."""
        response = await self._search("fallback search", query.location.index, fallback_body(query))
        return parse_scored_hits(response)

    async def popular(self, query: PopularQuery) -> list[ScoredItem]:
        """The most popular items under the query's filters."""
        response = await self._search("popularity search", query.index, popular_body(query))
        return parse_scored_hits(response)

    async def get_items(self, index: str, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """Documents by id (real-time, no refresh needed); ids not found are absent."""
        if not ids:
            return {}
        with opensearch_errors(f"read back {len(ids)} documents from {index}"):
            response = await self._client.mget(index=index, body=mget_body(ids), filter_path=DOCS_ONLY)
        return {str(doc["_id"]): doc["_source"] for doc in response.get("docs", []) if doc.get("found")}

    async def count(self, index: str, body: Body | None = None) -> int:
        """Documents matching a count body (search.requests.count_body and kin), or all of them."""
        with opensearch_errors(f"count {index}"):
            response = await self._client.count(index=index, body=body or {"query": {"match_all": {}}})
        return int(response["count"])

    async def iter_item_ids(
        self, index: str, query: Body | None = None, page_size: int = 5000
    ) -> AsyncIterator[str]:
        """Every document id of an index (or those matching `query`), in id order."""
        after: str | None = None
        while True:
            body = ids_page_body(page_size, after, query)
            response = await self._search("list ids", index, body, IDS_ONLY)
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
                await self._client.cluster.health()
        except SearchError:
            return False
        return True

    # --- indices, aliases, templates ---

    async def create_index(
        self,
        index: str,
        vector_properties: Mapping[str, Any],
        ef_search: int,
        build_meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Create an items index with the given vector slots (a bulk-load build with `build_meta`)."""
        with opensearch_errors(f"create index {index}"):
            await self._client.indices.create(
                index=index, body=create_index_body(vector_properties, ef_search, build_meta)
            )

    async def finish_build(self, index: str) -> None:
        """Turn refresh back on and refresh, so everything written is visible to search."""
        with opensearch_errors(f"finish build of {index}"):
            await self._client.indices.put_settings(index=index, body=refresh_interval_body("1s"))
            await self._client.indices.refresh(index=index)

    async def force_merge(self, index: str, segments: int = 1) -> None:
        """Merge segments: fewer HNSW graphs to search, so faster queries and better recall per ef_search."""
        with opensearch_errors(f"force-merge {index}"):
            await self._client.indices.forcemerge(
                index=index, max_num_segments=segments, request_timeout=MERGE_TIMEOUT_SECONDS
            )

    async def set_index_meta(self, index: str, meta: Mapping[str, Any]) -> None:
        """Replace the `_meta` of an index's mapping."""
        with opensearch_errors(f"write mapping _meta of {index}"):
            await self._client.indices.put_mapping(index=index, body=meta_body(meta))

    async def add_vector_slots(self, index: str, vector_properties: Mapping[str, Any]) -> None:
        """Add vector slot fields to an existing index (a new type in the live index)."""
        with opensearch_errors(f"add vector slots to {index}"):
            await self._client.indices.put_mapping(index=index, body=put_mapping_body(vector_properties))

    async def index_exists(self, index: str) -> bool:
        """Whether an index or alias of that name exists."""
        with opensearch_errors(f"check index {index}"):
            return bool(await self._client.indices.exists(index=index))

    async def list_indices(self, pattern: str) -> list[str]:
        """Concrete index names matching a wildcard pattern, sorted."""
        with opensearch_errors(f"list indices {pattern}"):
            found = await self._client.indices.get(
                index=pattern, expand_wildcards="all", ignore_unavailable=True
            )
        return sorted(found)

    async def delete_index(self, index: str) -> bool:
        """Delete an index; False when it did not exist."""
        try:
            with opensearch_errors(f"delete index {index}"):
                await self._client.indices.delete(index=index)
        except IndexNotFound:
            return False
        return True

    async def refresh(self, index: str) -> None:
        """Make every write so far visible to search."""
        with opensearch_errors(f"refresh {index}"):
            await self._client.indices.refresh(index=index)

    async def alias_targets(self, alias: str) -> list[str]:
        """The indices an alias points at (empty when the alias does not exist)."""
        try:
            with opensearch_errors(f"read alias {alias}"):
                response = await self._client.indices.get_alias(name=alias)
        except IndexNotFound:
            # A missing alias answers 404 with an error body, not a map of indices: nothing to parse.
            return []
        return parse_alias_targets(response, alias)

    async def swap_alias(self, alias: str, new_index: str) -> list[str]:
        """Point `alias` at `new_index` only, atomically; returns the indices it pointed at before."""
        previous = await self.alias_targets(alias)
        with opensearch_errors(f"swap alias {alias} to {new_index}"):
            await self._client.indices.update_aliases(body=alias_swap_body(alias, new_index, previous))
        return previous

    async def put_index_template(self, name: str, body: Body) -> None:
        """Install (or replace) a composable index template."""
        with opensearch_errors(f"install index template {name}"):
            await self._client.indices.put_index_template(name=name, body=body)

    async def index_template(self, name: str) -> Mapping[str, Any] | None:
        """An installed composable index template's body, None when there is none of that name."""
        try:
            with opensearch_errors(f"read index template {name}"):
                response = await self._client.indices.get_index_template(name=name)
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
    ) -> BulkReport:
        """Send bulk actions, check every item, retry rejected (429) ones with exponential back-off."""
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
                with opensearch_errors(f"bulk write of {len(pending)} actions"):
                    response = await self._client.bulk(
                        body=bulk_body(pending),
                        refresh="true" if refresh else "false",
                        request_timeout=timeout_seconds,
                        filter_path=BULK_ITEMS_ONLY,
                    )
            except SearchUnavailable as exc:
                # A whole-request 429/503 is retried like per-item 429s; a last failure names every id.
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
        with opensearch_errors(f"clear {', '.join(fields)} in {index}"):
            reply = await self._client.update_by_query(
                index=index,
                body=clear_fields_body(fields),
                conflicts="proceed",
                refresh=True,
                request_timeout=MERGE_TIMEOUT_SECONDS,
            )
        return int(reply["updated"])
