"""What the indexer needs beyond search.engine: bulk-load mode, merges, index listing, build markers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opensearchpy import OpenSearch

from contract.indexing import items_alias
from contract.versions import VERSION_ID
from search.errors import opensearch_errors
from search.requests import BulkAction, clear_fields_body, create_index_body, ids_page_body


def create_building_index(
    client: OpenSearch,
    index: str,
    vector_properties: Mapping[str, Any],
    ef_search: int,
    meta: Mapping[str, Any],
) -> None:
    """Create an items index (template supplies metadata) for bulk loading: no refresh until finished.

    `meta` goes into the mapping's `_meta`, so a crashed build can be told from a verified one.
    """
    body = create_index_body(vector_properties, ef_search)
    # One segment build at the end instead of a refresh (and a small HNSW graph) every second.
    body["settings"]["index"]["refresh_interval"] = "-1"
    body["mappings"]["_meta"] = dict(meta)
    with opensearch_errors(f"create index {index}"):
        client.indices.create(index=index, body=body)


def finish_build(client: OpenSearch, index: str) -> None:
    """Turn refresh back on and refresh, so everything written is visible to search."""
    with opensearch_errors(f"finish build of {index}"):
        client.indices.put_settings(index=index, body={"index": {"refresh_interval": "1s"}})
        client.indices.refresh(index=index)


def force_merge(client: OpenSearch, index: str, segments: int = 1) -> None:
    """Merge segments: fewer HNSW graphs to search, so faster queries and better recall per ef_search."""
    with opensearch_errors(f"force-merge {index}"):
        client.indices.forcemerge(index=index, max_num_segments=segments, request_timeout=3600)


def list_indices(client: OpenSearch, pattern: str) -> list[str]:
    """Concrete index names matching a wildcard pattern, sorted."""
    with opensearch_errors(f"list indices {pattern}"):
        found = client.indices.get(index=pattern, expand_wildcards="all", ignore_unavailable=True)
    return sorted(found)


def shadow_indices(client: OpenSearch, index_prefix: str, type_name: str) -> list[str]:
    """Shadow indices of a type (any version), by exact name shape, not just a prefix match."""
    alias = items_alias(index_prefix, type_name)
    names = list_indices(client, f"{alias}-*")
    return [n for n in names if VERSION_ID.match(n[len(alias) + 1 :].upper())]


def index_meta(client: OpenSearch, index: str) -> dict[str, Any]:
    """The `_meta` of an index's mapping."""
    with opensearch_errors(f"read mapping of {index}"):
        found = client.indices.get_mapping(index=index)
    return dict(next(iter(found.values()))["mappings"].get("_meta", {}))


def set_index_meta(client: OpenSearch, index: str, meta: Mapping[str, Any]) -> None:
    """Replace the `_meta` of an index's mapping."""
    with opensearch_errors(f"write mapping _meta of {index}"):
        client.indices.put_mapping(index=index, body={"_meta": dict(meta)})


def clear_slot_action(index: str, item_id: str, vector_field: str, version_field: str) -> BulkAction:
    """Empty a slot of an existing document (the item has no vector of the slot's new version)."""
    return BulkAction(
        item_id,
        {"update": {"_index": index, "_id": item_id}},
        {"doc": {vector_field: None, version_field: None}},
    )


def clear_fields(client: OpenSearch, index: str, fields: Sequence[str]) -> int:
    """Remove `fields` from every document of `index` holding one, refreshed; returns how many changed.

    A document written concurrently is skipped (conflicts proceed), not failed: a later call finds it.
    """
    with opensearch_errors(f"clear {', '.join(fields)} in {index}"):
        reply = client.update_by_query(
            index=index,
            body=clear_fields_body(fields),
            conflicts="proceed",
            refresh=True,
            request_timeout=3600,
        )
    return int(reply["updated"])


def iter_ids_lacking(
    client: OpenSearch, index: str, field: str, value: str, page_size: int = 5000
) -> Iterator[str]:
    """Ids of documents whose `field` does not hold `value` (absent or another), in id order."""
    after: str | None = None
    while True:
        body = ids_page_body(page_size, after)
        body["query"] = {"bool": {"must_not": [{"term": {field: value}}]}}
        with opensearch_errors(f"list ids of {index} lacking {field}={value}"):
            hits = client.search(index=index, body=body)["hits"]["hits"]
        for hit in hits:
            yield str(hit["_id"])
        if len(hits) < page_size:
            return
        after = str(hits[-1]["sort"][0])
