"""Partition layouts on the news catalog, in one run (`python -m bench partitions`; not in make bench):
one index filtered by partition, one index routed by partition, one sub-index per partition.

Lockstep scopes a request to partitions with a filter on the schema's partition field inside the k-NN clause
(serving.models: `partitions`); this measures it against the two layouts a deployment could choose instead, on
the same documents and queries: build time, size on disk, p50/p99 of partition-scoped k-NN queries and their
recall@10 against the exact top 10 of the partition, for the largest and the smallest partition.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers

from contract.settings import Settings
from examples.news.synth import generate, item_vectors, user_vectors

ITEMS = int(os.environ.get("LOCKSTEP_BENCH_PARTITION_ITEMS", "50000"))
DIM = 32
QUERIES = 200
K = 10
CANDIDATES = 100
SHARDS = 3
LAYOUTS = ("filter", "routing", "subindex")


def _knn(vector: np.ndarray, region: str | None) -> dict[str, Any]:
    clause: dict[str, Any] = {"vector": vector.tolist(), "k": CANDIDATES}
    if region is not None:
        clause["filter"] = {"term": {"region": region}}
    return {"size": K, "_source": False, "query": {"knn": {"vector": clause}}}


def _mapping(shards: int) -> dict[str, Any]:
    return {
        "settings": {"index": {"knn": True, "number_of_shards": shards, "number_of_replicas": 0}},
        "mappings": {
            "properties": {
                "region": {"type": "keyword"},
                "vector": {
                    "type": "knn_vector",
                    "dimension": DIM,
                    "method": {
                        "name": "hnsw",
                        "engine": "lucene",
                        "space_type": "innerproduct",
                        "parameters": {"m": 16, "ef_construction": 128},
                    },
                },
            }
        },
    }


def _actions(
    index_of: dict[str, str], ids: list[str], regions: list[str], vectors: np.ndarray, routed: bool
) -> Iterator[dict[str, Any]]:
    for item_id, region, vector in zip(ids, regions, vectors, strict=True):
        action: dict[str, Any] = {
            "_index": index_of[region],
            "_id": item_id,
            "_source": {"region": region, "vector": vector.tolist()},
        }
        if routed:
            action["_routing"] = region
        yield action


def _build(
    client: OpenSearch, layout: str, prefix: str, ids: list[str], regions: list[str], vectors: np.ndarray
) -> tuple[dict[str, str], float, int]:
    """The layout's indices (region -> index), built and merged: seconds, bytes on disk."""
    began = time.perf_counter()
    if layout == "subindex":
        index_of = {r: f"{prefix}-sub-{r}" for r in sorted(set(regions))}
        for index in index_of.values():
            client.indices.create(index=index, body=_mapping(1))
    else:
        index = f"{prefix}-{layout}"
        client.indices.create(index=index, body=_mapping(SHARDS))
        index_of = {r: index for r in set(regions)}
    helpers.bulk(client, _actions(index_of, ids, regions, vectors, layout == "routing"), chunk_size=1000)
    targets = ",".join(sorted(set(index_of.values())))
    client.indices.refresh(index=targets)
    client.indices.forcemerge(index=targets, max_num_segments=1, request_timeout=3600)
    seconds = time.perf_counter() - began
    stats = client.indices.stats(index=targets, metric="store")
    return index_of, seconds, int(stats["_all"]["primaries"]["store"]["size_in_bytes"])


def _query(client: OpenSearch, layout: str, index: str, vector: np.ndarray, region: str) -> list[str]:
    if layout == "subindex":
        reply = client.search(index=index, body=_knn(vector, None))
    elif layout == "routing":
        reply = client.search(index=index, body=_knn(vector, region), params={"routing": region})
    else:
        reply = client.search(index=index, body=_knn(vector, region))
    return [hit["_id"] for hit in reply["hits"]["hits"]]


def run(settings: Settings) -> dict[str, Any]:
    """Build each layout over the same catalog; query the largest and the smallest partition through each."""
    client = OpenSearch(settings.opensearch_endpoint, timeout=600)
    docs = list(generate(ITEMS, seed=11))
    ids = [doc["item_id"] for doc in docs]
    regions = [doc["region"] for doc in docs]
    vectors = item_vectors(ITEMS, DIM, seed=11)
    queries = user_vectors(QUERIES, DIM, seed=11)
    counts = {r: regions.count(r) for r in set(regions)}
    largest, smallest = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    members = {r: np.flatnonzero(np.array(regions) == r) for r in (largest, smallest)}
    exact = {
        r: [[ids[members[r][j]] for j in np.argsort(-(vectors[members[r]] @ q))[:K]] for q in queries]
        for r in members
    }
    prefix = settings.index_prefix
    results: dict[str, Any] = {
        "items": ITEMS,
        "dim": DIM,
        "partition_items": {largest: counts[largest], smallest: counts[smallest]},
    }
    try:
        for layout in LAYOUTS:
            index_of, seconds, size = _build(client, layout, prefix, ids, regions, vectors)
            measured: dict[str, Any] = {"build_seconds": round(seconds, 1), "bytes": size}
            for region in (largest, smallest):
                for q in queries[:20]:  # warm the graph and the caches
                    _query(client, layout, index_of[region], q, region)
                took, hits = [], 0
                for q, truth in zip(queries, exact[region], strict=True):
                    began = time.perf_counter()
                    found = _query(client, layout, index_of[region], q, region)
                    took.append((time.perf_counter() - began) * 1000)
                    hits += len(set(found) & set(truth))
                took.sort()
                measured[region] = {
                    "p50_ms": round(statistics.median(took), 2),
                    "p99_ms": round(took[int(len(took) * 0.99) - 1], 2),
                    "recall_at_10": round(hits / (K * len(queries)), 4),
                }
            results[layout] = measured
            print(f"{layout}: {measured}", flush=True)
    finally:
        client.indices.delete(index=f"{prefix}-*", params={"expand_wildcards": "all"})
        client.close()
    return results
