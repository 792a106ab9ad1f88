"""Indexing benchmarks: our bulk path vs opensearch-py parallel_bulk, and a synthetic shadow build."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import redis
import uvicorn
from opensearchpy import helpers

from contract.indexing import Slot
from contract.keys import Keys
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from indexer.bulk import write_all
from indexer.catalog import Item
from indexer.metrics import IndexerMetrics
from indexer.orchestrator_client import OrchestratorClient
from indexer.shadow import ShadowIndexer
from orchestrator.main import create_app
from search import engine
from search.requests import ItemDocument, SlotVector, VersionedKnnQuery, index_action
from search.templates import install_items_template, vector_slot_mappings
from training.publish import VectorSet, publish
from training.registry import register_type


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _items(n: int) -> list[Item]:
    return [
        Item(str(i), f"book {i}", ("someone",), 2000, "en", 4.0, 100, ("fiction",)) for i in range(1, n + 1)
    ]


def _bulk_comparison(
    settings: Settings, etype: EmbeddingType, matrix: np.ndarray, items: list[Item], rounds: int = 2
) -> dict[str, Any]:
    client = engine.build_client(settings, timeout=300)
    install_items_template(client, settings)
    props = vector_slot_mappings(etype, settings, (Slot.A,))
    docs = [
        ItemDocument(it.item_id, it.document(), (SlotVector.of(etype.name, Slot.A, "v", matrix[i]),))
        for i, it in enumerate(items)
    ]
    seconds: dict[str, list[float]] = {"ours": [], "parallel_bulk": []}
    # Alternate the order each round so neither side always meets a warmer (or busier) node.
    for r in range(rounds):
        for name in ("ours", "parallel_bulk") if r % 2 == 0 else ("parallel_bulk", "ours"):
            index = f"{settings.index_prefix}-items-bench-{name.replace('_', '-')}"
            engine.delete_index(client, index)
            engine.create_index(client, index, props, settings.hnsw_ef_search)
            client.indices.put_settings(index=index, body={"index": {"refresh_interval": "-1"}})
            began = time.perf_counter()
            if name == "ours":
                # The indexer's own path: chunks through search.engine.bulk_write, N in flight.
                actions = [index_action(index, d) for d in docs]
                written = write_all(client, actions, 500, settings.indexer_bulk_workers, "bench")
                assert written == len(docs)
            else:
                gen = ({"_index": index, "_id": d.item_id, "_source": d.source()} for d in docs)
                for ok, info in helpers.parallel_bulk(
                    client, gen, chunk_size=500, thread_count=4, request_timeout=300
                ):
                    assert ok, info
            seconds[name].append(time.perf_counter() - began)
            engine.delete_index(client, index)
    client.close()
    ours, theirs = min(seconds["ours"]), min(seconds["parallel_bulk"])
    return {
        "rounds": rounds,
        "bulk_workers": settings.indexer_bulk_workers,
        "ours_seconds": [round(x, 3) for x in seconds["ours"]],
        "parallel_bulk_seconds": [round(x, 3) for x in seconds["parallel_bulk"]],
        "docs_per_second_ours": round(len(docs) / ours),
        "docs_per_second_parallel_bulk": round(len(docs) / theirs),
        # Best round of each: the least disturbed by the other processes sharing the machine.
        "ratio_ours_vs_parallel_bulk": round(theirs / ours, 3),
    }


def run(settings: Settings, n: int = 20_000, dim: int = 128, queries: int = 200) -> dict[str, Any]:
    """Both benchmarks on random unit vectors; returns the figures (ratios are measured in this run)."""
    token = f"b{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(
        update={
            "key_prefix": token,
            "index_prefix": token,
            "orchestrator_url": f"http://127.0.0.1:{_free_port()}",
            "orchestrator_poll_seconds": 0.2,
            "recall_floor": 0.0,
        }
    )
    keys = Keys(settings.key_prefix)
    rclient = redis.Redis.from_url(settings.redis_endpoint)
    etype = EmbeddingType(
        name=f"bench-d{dim}", family=Family.DIRECT_DIRECT, dim=dim, similarity=Similarity.COSINE
    )
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(n, dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    items = _items(n)
    result: dict[str, Any] = {
        "n": n,
        "dim": dim,
        "hnsw": {
            "m": settings.hnsw_m,
            "ef_construction": settings.hnsw_ef_construction,
            "ef_search": settings.hnsw_ef_search,
        },
    }
    result["bulk"] = _bulk_comparison(settings, etype, matrix, items)

    register_type(rclient, keys, etype)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    frame = Frame(start, start + timedelta(days=30))
    users = rng.normal(size=(100, dim)).astype(np.float32)
    publish(
        rclient,
        keys,
        etype,
        frame,
        users=VectorSet(tuple(f"u{i}" for i in range(100)), users),
        items=VectorSet(tuple(i.item_id for i in items), matrix),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=int(settings.orchestrator_url.rsplit(":", 1)[1]),
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    search = engine.build_client(settings, timeout=600)
    try:
        with OrchestratorClient(settings, timeout=60) as orch:
            while True:
                try:
                    info = orch.type_info(etype.name)
                    if info.latest == frame.version_id:
                        break
                except Exception:  # not up yet
                    pass
                time.sleep(0.2)
            shadow = ShadowIndexer(settings, search, orch, items, IndexerMetrics.create(), batch_size=1000)
            began = time.perf_counter()
            built = shadow.cycle(info)
            result["shadow_build"] = {
                "total_seconds": round(time.perf_counter() - began, 3),
                **built.timings.as_dict(),
                "recall_at_10_sample": built.recall,
            }
            loc = next(x for x in orch.type_info(etype.name).indexed)
        lat = []
        recalls = []
        from indexer.recall import exact_top_k, recall_at_k

        ids = [i.item_id for i in items]
        for q in rng.normal(size=(queries, dim)).astype(np.float32):
            began = time.perf_counter()
            hits = engine.knn_search(
                search, VersionedKnnQuery(loc, etype.similarity, q.tolist(), 10, source_fields=())
            )
            lat.append(time.perf_counter() - began)
            recalls.append(
                recall_at_k([h.item_id for h in hits], exact_top_k(ids, matrix, q, etype.similarity, 10))
            )
        result["query"] = {
            "p50_ms": round(statistics.median(lat) * 1000, 2),
            "recall_at_10_random_queries": round(float(np.mean(recalls)), 4),
        }
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        search.indices.delete(index=f"{settings.index_prefix}-*", ignore_unavailable=True)
        search.close()
        for key in rclient.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
            rclient.delete(key)
        rclient.close()
    return result


if __name__ == "__main__":
    import json
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(json.dumps(run(Settings.model_validate({}), n=size), indent=2))
