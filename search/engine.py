"""Thin I/O: the OpenSearch client, sending the bodies of search.requests, parsing hits into typed results."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opensearchpy import OpenSearch

from contract.settings import Settings
from search.errors import IndexNotFound, SearchUnavailable, VersionMismatch, opensearch_errors
from search.requests import (
    Body,
    BulkAction,
    FallbackQuery,
    PopularQuery,
    VersionedKnnQuery,
    alias_swap_body,
    bulk_body,
    create_index_body,
    exact_body,
    fallback_body,
    ids_page_body,
    knn_body,
    mget_body,
    popular_body,
    put_mapping_body,
)
from search.scores import to_similarity

BULK_TIMEOUT_SECONDS: Final = 120.0


def build_client(settings: Settings, *, timeout: float | None = None, pool_size: int = 16) -> OpenSearch:
    """A client for the configured cluster; no client-side retries (callers decide what to retry)."""
    return OpenSearch(
        hosts=[settings.opensearch_endpoint],
        timeout=timeout if timeout is not None else settings.request_timeout_seconds,
        max_retries=0,
        retry_on_timeout=False,
        maxsize=pool_size,
    )


# --- results ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredItem:
    """One hit: the item, its score on the model's scale (or the fallback scale), and its stored fields."""

    item_id: str
    score: float
    raw_score: float
    version: str | None
    source: Mapping[str, Any]


def _hits(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    hits: list[Mapping[str, Any]] = response.get("hits", {}).get("hits", [])
    return hits


def parse_vector_hits(response: Mapping[str, Any], query: VersionedKnnQuery) -> list[ScoredItem]:
    """Hits of a k-NN or exact query, scores converted to the model similarity; refuses any other version.

    Each hit keeps its `_source` as it came (the version field included): readers pick the fields they show.
    """
    loc = query.location
    items = []
    for hit in _hits(response):
        source = hit.get("_source", {})
        version = source.get(loc.version_field)
        if version != loc.version:
            raise VersionMismatch(
                f"hit {hit.get('_id')!r} from {loc.index} has version {version!r} in {loc.version_field}, "
                f"the query asked for {loc.version!r}"
            )
        raw = float(hit["_score"])
        items.append(ScoredItem(str(hit["_id"]), to_similarity(query.similarity, raw), raw, version, source))
    return items


def parse_scored_hits(response: Mapping[str, Any], version_field: str | None = None) -> list[ScoredItem]:
    """Hits of a fallback or popularity query (scores are on the fallback scale)."""
    items = []
    for hit in _hits(response):
        source = hit.get("_source", {})
        raw = float(hit["_score"])
        version = source.get(version_field) if version_field else None
        items.append(ScoredItem(str(hit["_id"]), raw, raw, version, source))
    return items


# --- searches --------------------------------------------------------------------------------------------


def knn_search(client: OpenSearch, query: VersionedKnnQuery) -> list[ScoredItem]:
    """Approximate, versioned k-NN under the query's filters."""
    with opensearch_errors(f"k-NN search on {query.location.index}"):
        response = client.search(index=query.location.index, body=knn_body(query))
    return parse_vector_hits(response, query)


def exact_search(client: OpenSearch, query: VersionedKnnQuery) -> list[ScoredItem]:
    """Exact (brute-force) scoring of the same query: the reference for recall checks."""
    with opensearch_errors(f"exact k-NN search on {query.location.index}"):
        response = client.search(index=query.location.index, body=exact_body(query))
    return parse_vector_hits(response, query)


def fallback_search(client: OpenSearch, query: FallbackQuery) -> list[ScoredItem]:
    """Items without a vector of the version, scored by content overlap and popularity."""
    with opensearch_errors(f"fallback search on {query.location.index}"):
        response = client.search(index=query.location.index, body=fallback_body(query))
    return parse_scored_hits(response)


def popular_search(client: OpenSearch, query: PopularQuery) -> list[ScoredItem]:
    """The most popular items under the filters."""
    with opensearch_errors(f"popularity search on {query.index}"):
        response = client.search(index=query.index, body=popular_body(query))
    return parse_scored_hits(response)


def count(client: OpenSearch, index: str, body: Body | None = None) -> int:
    """Number of documents matching a count body (search.requests.count_body), or all of them."""
    with opensearch_errors(f"count {index}"):
        response = client.count(index=index, body=body or {"query": {"match_all": {}}})
    return int(response["count"])


def get_items(client: OpenSearch, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Read documents back by id (real-time, no refresh needed); ids not found are absent."""
    if not ids:
        return {}
    with opensearch_errors(f"read back {len(ids)} documents from {index}"):
        response = client.mget(index=index, body=mget_body(ids))
    return {doc["_id"]: doc["_source"] for doc in response["docs"] if doc.get("found")}


def iter_item_ids(client: OpenSearch, index: str, page_size: int = 5000) -> Iterator[str]:
    """Every document id of an index, in id order."""
    after: str | None = None
    while True:
        with opensearch_errors(f"list ids of {index}"):
            response = client.search(index=index, body=ids_page_body(page_size, after))
        hits = _hits(response)
        for hit in hits:
            yield str(hit["_id"])
        if len(hits) < page_size:
            return
        after = str(hits[-1]["sort"][0])


def id_digest(ids: Iterable[str]) -> str:
    """sha256 over the sorted, newline-joined ids: compare an index's ids with a catalog's."""
    digest = hashlib.sha256()
    for item_id in sorted(ids):
        digest.update(item_id.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def index_id_digest(client: OpenSearch, index: str) -> tuple[int, str]:
    """(count, id_digest) of every document id in an index."""
    ids = list(iter_item_ids(client, index))
    return len(ids), id_digest(ids)


# --- indices and aliases ---------------------------------------------------------------------------------


def create_index(
    client: OpenSearch, index: str, vector_properties: Mapping[str, Any], ef_search: int
) -> None:
    """Create an items index (the template supplies metadata and settings) with the given vector slots."""
    with opensearch_errors(f"create index {index}"):
        client.indices.create(index=index, body=create_index_body(vector_properties, ef_search))


def add_vector_slots(client: OpenSearch, index: str, vector_properties: Mapping[str, Any]) -> None:
    """Add vector slot fields to an existing index (a new type in the live index)."""
    with opensearch_errors(f"add vector slots to {index}"):
        client.indices.put_mapping(index=index, body=put_mapping_body(vector_properties))


def index_exists(client: OpenSearch, index: str) -> bool:
    """Whether an index or alias of that name exists."""
    with opensearch_errors(f"check index {index}"):
        return bool(client.indices.exists(index=index))


def delete_index(client: OpenSearch, index: str) -> bool:
    """Delete an index; False when it did not exist."""
    try:
        with opensearch_errors(f"delete index {index}"):
            client.indices.delete(index=index)
    except IndexNotFound:
        return False
    return True


def refresh(client: OpenSearch, index: str) -> None:
    """Make every write so far visible to search."""
    with opensearch_errors(f"refresh {index}"):
        client.indices.refresh(index=index)


def alias_targets(client: OpenSearch, alias: str) -> list[str]:
    """The indices an alias points at (empty when the alias does not exist)."""
    try:
        with opensearch_errors(f"read alias {alias}"):
            response = client.indices.get_alias(name=alias)
    except IndexNotFound:
        # A missing alias answers 404 with an error body, not a map of indices: there is nothing to parse.
        return []
    return parse_alias_targets(response, alias)


def parse_alias_targets(response: Mapping[str, Any], alias: str) -> list[str]:
    """Index names whose entry in a get-alias response lists `alias`; anything else is ignored."""
    return sorted(
        name
        for name, info in response.items()
        if isinstance(info, Mapping) and isinstance(info.get("aliases"), Mapping) and alias in info["aliases"]
    )


def swap_alias(client: OpenSearch, alias: str, new_index: str) -> list[str]:
    """Point `alias` at `new_index` only, atomically; returns the indices it pointed at before."""
    previous = alias_targets(client, alias)
    with opensearch_errors(f"swap alias {alias} to {new_index}"):
        client.indices.update_aliases(body=alias_swap_body(alias, new_index, previous))
    return previous


# --- bulk ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkReport:
    """What a bulk write did: ids written, ids that failed and why, and how many 429 retries it took."""

    succeeded: tuple[str, ...]
    failed: Mapping[str, str] = field(default_factory=dict)
    retries: int = 0

    @property
    def ok(self) -> bool:
        """Whether every action succeeded."""
        return not self.failed


def bulk_write(
    client: OpenSearch,
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
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
            retries += 1
        try:
            with opensearch_errors(f"bulk write of {len(pending)} actions"):
                response = client.bulk(
                    body=bulk_body(pending),
                    refresh="true" if refresh else "false",
                    request_timeout=timeout_seconds,
                )
        except SearchUnavailable as exc:
            # A whole-request 429/503 is retried like per-item 429s; a last failure names every id.
            if attempt == max_retries:
                failed.update({action.item_id: str(exc) for action in pending})
                pending = []
            continue
        retry: list[BulkAction] = []
        for action, item in zip(pending, response["items"], strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 0))
            if status < 300 or (status == 404 and "delete" in item):
                succeeded.append(action.item_id)
            elif status == 429 and attempt < max_retries:
                retry.append(action)
            else:
                failed[action.item_id] = _item_reason(status, result.get("error"))
        pending = retry
    return BulkReport(tuple(succeeded), failed, retries)


def _item_reason(status: int, error: Any) -> str:
    if isinstance(error, Mapping):
        cause = error.get("caused_by")
        reason = f"{error.get('type', '')}: {error.get('reason', '')}"
        if isinstance(cause, Mapping):
            reason += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
        return f"{status} {reason}"
    return f"{status} {error}"
