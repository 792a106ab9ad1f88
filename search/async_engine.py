"""Async I/O for request-path readers (serving): search.engine's bodies and hit parsing, over keep-alive HTTP.

search.engine is synchronous (opensearch-py); an async web process would otherwise park every query on a
thread. This module sends the bodies built by search.requests and parses hits with search.engine's parsers,
so the versioned k-NN (version filter inside the clause, VersionMismatch on a foreign hit) is identical.
The transport is search.keepalive: its CPU per call is what serving adds to a raw orchestrator call + query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from search.engine import ScoredItem, parse_scored_hits, parse_vector_hits
from search.errors import (
    IndexNotFound,
    SearchFailed,
    SearchRejected,
    SearchUnavailable,
    reason_of,
)
from search.keepalive import HttpUnavailable, KeepAlivePool
from search.requests import (
    Body,
    FallbackQuery,
    PopularQuery,
    VersionedKnnQuery,
    exact_body,
    fallback_body,
    knn_body,
    mget_body,
    popular_body,
)

_UNAVAILABLE: Final = frozenset({429, 502, 503, 504})
# identity: gzip on a keep-alive pool to a nearby cluster costs CPU on both ends and saves nothing measurable.
SEARCH_HEADERS: Final = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
_POOL_HEADERS: Final = {"Accept-Encoding": "identity"}  # the pool adds Content-Type to bodies itself
# Only what the hit parsers and error mapping read: less for OpenSearch to write and for us to parse.
HITS_ONLY: Final = "?filter_path=hits.hits._id,hits.hits._score,hits.hits._source,error,status"


class AsyncSearch:
    """An async OpenSearch reader: one keep-alive pool, a timeout per call, our exceptions only.

    Use it from one event loop (its connections belong to the loop that opened them).
    """

    def __init__(self, endpoint: str, timeout: float, pool_size: int = 64) -> None:
        self._http = KeepAlivePool(endpoint, timeout, _POOL_HEADERS, limit=pool_size)

    async def aclose(self) -> None:
        """Close the pool."""
        await self._http.aclose()

    async def _send(self, action: str, method: str, path: str, body: Body | None = None) -> Any:
        try:
            reply = await self._http.request(method, path, None if body is None else orjson.dumps(body))
        except HttpUnavailable as exc:
            raise SearchUnavailable(f"{action}: OpenSearch unreachable or timed out ({exc})") from exc
        status, content = reply.status, reply.content
        if status < 300:
            return orjson.loads(content)
        try:
            info: Any = orjson.loads(content)
        except orjson.JSONDecodeError:
            info = None
        reason = reason_of(info, content[:200].decode("utf-8", "replace"))
        if status in _UNAVAILABLE:
            raise SearchUnavailable(f"{action}: OpenSearch unavailable ({status}): {reason}")
        if status == 404:
            raise IndexNotFound(status, f"{action}: {reason}")
        if 400 <= status < 500:
            raise SearchRejected(status, f"{action}: {reason}")
        raise SearchFailed(f"{action}: OpenSearch failed ({status}): {reason}")

    async def knn(self, query: VersionedKnnQuery) -> list[ScoredItem]:
        """Approximate, versioned k-NN under the query's filters (scores on the model's similarity)."""
        index = query.location.index
        response = await self._send(
            f"k-NN search on {index}", "POST", f"/{index}/_search" + HITS_ONLY, knn_body(query)
        )
        return parse_vector_hits(response, query)

    async def exact(self, query: VersionedKnnQuery) -> list[ScoredItem]:
        """Exact (brute-force) scoring of the same query: the reference for recall checks."""
        index = query.location.index
        response = await self._send(
            f"exact search on {index}", "POST", f"/{index}/_search" + HITS_ONLY, exact_body(query)
        )
        return parse_vector_hits(response, query)

    async def fallback(self, query: FallbackQuery) -> list[ScoredItem]:
        """Items without a vector of the query's version, content + popularity scored."""
        index = query.location.index
        body = fallback_body(query)
        response = await self._send(
            f"fallback search on {index}", "POST", f"/{index}/_search" + HITS_ONLY, body
        )
        return parse_scored_hits(response)

    async def popular(self, query: PopularQuery) -> list[ScoredItem]:
        """The most popular items under the query's filters."""
        body = popular_body(query)
        response = await self._send(
            f"popularity search on {query.index}", "POST", f"/{query.index}/_search" + HITS_ONLY, body
        )
        return parse_scored_hits(response)

    async def get_items(self, index: str, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """Documents by id (real-time); ids not found are absent."""
        if not ids:
            return {}
        response = await self._send(
            f"read {len(ids)} documents from {index}", "POST", f"/{index}/_mget", mget_body(ids)
        )
        return {str(doc["_id"]): doc["_source"] for doc in response["docs"] if doc.get("found")}

    async def ping(self) -> bool:
        """Whether the cluster answers its health endpoint."""
        try:
            await self._send("cluster health", "GET", "/_cluster/health")
        except (SearchUnavailable, SearchFailed, SearchRejected):
            return False
        return True
