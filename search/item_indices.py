"""Item index lifecycle for the indexer: create, bulk write with per-item checks, read back, alias swap."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch

from contract.indexing import Slot
from contract.items import ITEM_ID
from contract.settings import Settings
from contract.types import EmbeddingType
from search.errors import IndexNotFound, SearchRejected, SearchUnavailable, opensearch_errors
from search.templates import items_template, vector_slot_mappings

RETRY_STATUSES = frozenset({429, 502, 503, 504})


def connect(settings: Settings, timeout: float = 120.0) -> OpenSearch:
    """An OpenSearch client for the configured cluster (bulk and merges need a long timeout)."""
    return OpenSearch(hosts=[settings.opensearch_endpoint], timeout=timeout, http_compress=False)


@dataclass(frozen=True)
class ItemWrite:
    """One bulk action on an item document: index (full), update (partial, upsert) or delete."""

    op: str  # "index" | "update" | "delete"
    item_id: str
    doc: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BulkFailure:
    """A document OpenSearch refused for good, with its reason."""

    item_id: str
    status: int
    reason: str


class BulkRejected(SearchRejected):
    """Some documents were refused (not retryable); `failures` names them."""

    def __init__(self, index: str, failures: Sequence[BulkFailure]) -> None:
        first = failures[0]
        super().__init__(
            first.status,
            f"{len(failures)} document(s) rejected by {index}; first: item {first.item_id!r}: {first.reason}",
        )
        self.failures = list(failures)


def create_items_index(
    client: OpenSearch,
    settings: Settings,
    name: str,
    types: Iterable[tuple[EmbeddingType, Iterable[Slot]]],
    *,
    building: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Create an item index from the items template plus vector slots; `building` disables refresh."""
    body = items_template(settings)["template"]
    properties = dict(body["mappings"]["properties"])
    for etype, slots in types:
        properties.update(vector_slot_mappings(etype, settings, tuple(slots)))
    index_settings = dict(body["settings"]["index"])
    if building:
        # No refresh while bulk loading: one segment build at the end instead of many small merges.
        index_settings["refresh_interval"] = "-1"
    mappings = {**body["mappings"], "properties": properties, "_meta": dict(meta or {})}
    with opensearch_errors(f"create index {name}"):
        client.indices.create(index=name, body={"settings": {"index": index_settings}, "mappings": mappings})


def add_vector_slots(client: OpenSearch, settings: Settings, name: str, etype: EmbeddingType) -> None:
    """Add a type's two slots to an existing index (no-op when they are there with the same mapping)."""
    with opensearch_errors(f"add slots of {etype.name} to {name}"):
        client.indices.put_mapping(index=name, body={"properties": vector_slot_mappings(etype, settings)})


def index_meta(client: OpenSearch, name: str) -> dict[str, Any]:
    """The `_meta` of an index's mapping."""
    with opensearch_errors(f"read mapping of {name}"):
        found = client.indices.get_mapping(index=name)
    return dict(next(iter(found.values()))["mappings"].get("_meta", {}))


def set_index_meta(client: OpenSearch, name: str, meta: Mapping[str, Any]) -> None:
    """Replace the `_meta` of an index's mapping (the indexer marks verified builds with it)."""
    with opensearch_errors(f"write mapping _meta of {name}"):
        client.indices.put_mapping(index=name, body={"_meta": dict(meta)})


def finish_build(client: OpenSearch, name: str) -> None:
    """Turn refresh back on and refresh, so everything written is visible to search."""
    with opensearch_errors(f"finish build of {name}"):
        client.indices.put_settings(index=name, body={"index": {"refresh_interval": "1s"}})
        client.indices.refresh(index=name)


def refresh(client: OpenSearch, name: str) -> None:
    """Make every write so far visible to search."""
    with opensearch_errors(f"refresh {name}"):
        client.indices.refresh(index=name)


def force_merge(client: OpenSearch, name: str, segments: int = 1) -> None:
    """Merge segments (fewer HNSW graphs to search: faster queries, better recall per ef)."""
    with opensearch_errors(f"force-merge {name}"):
        client.indices.forcemerge(index=name, max_num_segments=segments, request_timeout=3600)


def exists(client: OpenSearch, name: str) -> bool:
    """Whether an index (or alias) exists."""
    with opensearch_errors(f"check {name}"):
        return bool(client.indices.exists(index=name))


def list_indices(client: OpenSearch, pattern: str) -> list[str]:
    """Concrete index names matching a wildcard pattern, sorted."""
    with opensearch_errors(f"list {pattern}"):
        found = client.indices.get(index=pattern, expand_wildcards="all", ignore_unavailable=True)
    return sorted(found)


def delete_index(client: OpenSearch, name: str) -> None:
    """Delete an index; absent is fine."""
    with opensearch_errors(f"delete {name}"):
        client.indices.delete(index=name, ignore_unavailable=True)


def alias_targets(client: OpenSearch, alias: str) -> list[str]:
    """Indices the alias points at (empty when the alias does not exist)."""
    with opensearch_errors(f"read alias {alias}"):
        if not client.indices.exists_alias(name=alias):
            return []
        return sorted(client.indices.get_alias(name=alias))


def swap_alias(client: OpenSearch, alias: str, index: str) -> None:
    """Point `alias` at `index` only, in one atomic request (no moment without a target)."""
    actions: list[dict[str, Any]] = [
        {"remove": {"index": old, "alias": alias}} for old in alias_targets(client, alias) if old != index
    ]
    actions.append({"add": {"index": index, "alias": alias}})
    with opensearch_errors(f"swap alias {alias} -> {index}"):
        client.indices.update_aliases(body={"actions": actions})


def count(client: OpenSearch, name: str, query: Mapping[str, Any] | None = None) -> int:
    """Documents visible to search (optionally matching a query)."""
    with opensearch_errors(f"count {name}"):
        body = {"query": dict(query)} if query else None
        return int(client.count(index=name, body=body)["count"])


def scan_ids(client: OpenSearch, name: str, page: int = 5000) -> Iterator[str]:
    """Every document id of an index, by search_after on item_id (no scroll context to leak)."""
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": page, "_source": False, "sort": [{ITEM_ID: "asc"}]}
        if after is not None:
            body["search_after"] = after
        with opensearch_errors(f"scan ids of {name}"):
            hits = client.search(index=name, body=body)["hits"]["hits"]
        if not hits:
            return
        for hit in hits:
            yield str(hit["_id"])
        after = hits[-1]["sort"]


def get_documents(client: OpenSearch, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Read documents back by id (realtime get): id -> _source, absent ids left out."""
    if not ids:
        return {}
    with opensearch_errors(f"read back {len(ids)} documents from {name}"):
        docs = client.mget(index=name, body={"ids": list(ids)})["docs"]
    return {str(d["_id"]): dict(d["_source"]) for d in docs if d.get("found")}


def _action_lines(writes: Sequence[ItemWrite], index: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for w in writes:
        lines.append({w.op: {"_index": index, "_id": w.item_id}})
        if w.op == "index":
            lines.append(dict(w.doc or {}))
        elif w.op == "update":
            lines.append({"doc": dict(w.doc or {}), "doc_as_upsert": True})
    return lines


def bulk_write(
    client: OpenSearch,
    index: str,
    writes: Sequence[ItemWrite],
    *,
    max_retries: int = 8,
    backoff_seconds: float = 0.2,
    refresh_after: bool = False,
) -> int:
    """Write a batch; retry the items that got 429/5xx with exponential back-off; raise on the others.

    Returns how many items were written. A delete of an absent document counts as written.
    """
    pending = list(writes)
    written = 0
    for attempt in range(max_retries + 1):
        if not pending:
            break
        try:
            with opensearch_errors(f"bulk write to {index}"):
                reply = client.bulk(body=_action_lines(pending, index), refresh=refresh_after)
        except SearchUnavailable:
            if attempt == max_retries:
                raise
            time.sleep(backoff_seconds * 2**attempt)
            continue
        retry: list[ItemWrite] = []
        failures: list[BulkFailure] = []
        for w, item in zip(pending, reply["items"], strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 500))
            if status < 300 or (w.op == "delete" and status == 404):
                written += 1
            elif status in RETRY_STATUSES:
                retry.append(w)
            else:
                error = result.get("error", {})
                reason = (
                    f"{error.get('type', '')}: {error.get('reason', '')}"
                    if isinstance(error, dict)
                    else error
                )
                caused = error.get("caused_by") if isinstance(error, dict) else None
                if isinstance(caused, dict):
                    reason += f" (caused by {caused.get('type', '')}: {caused.get('reason', '')})"
                failures.append(BulkFailure(w.item_id, status, str(reason)))
        if failures:
            raise BulkRejected(index, failures)
        pending = retry
        if pending and attempt < max_retries:
            time.sleep(backoff_seconds * 2**attempt)
    if pending:
        raise SearchUnavailable(f"bulk write to {index}: {len(pending)} item(s) still refused with 429/5xx")
    return written


def knn_ids(
    client: OpenSearch,
    index: str,
    vector_field: str,
    version_field: str,
    version: str,
    vector: Sequence[float],
    k: int,
) -> list[tuple[str, float, str | None]]:
    """Approximate k nearest (id, score, version) with the version filter inside the knn clause."""
    body = {
        "size": k,
        "_source": [version_field],
        "query": {
            "knn": {
                vector_field: {
                    "vector": [float(x) for x in vector],
                    "k": k,
                    "filter": {"term": {version_field: version}},
                }
            }
        },
    }
    try:
        with opensearch_errors(f"knn on {index}"):
            hits = client.search(index=index, body=body)["hits"]["hits"]
    except IndexNotFound:
        raise
    return [(str(h["_id"]), float(h["_score"]), h.get("_source", {}).get(version_field)) for h in hits]
