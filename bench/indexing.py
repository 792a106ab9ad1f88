"""Indexing benchmarks: our bulk path vs opensearch-py parallel_bulk, and a synthetic shadow build."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import redis
import uvicorn
from opensearchpy import OpenSearch, helpers

from bench.checks import at_least
from contract.indexing import Slot
from contract.keys import Keys
from contract.redis_clients import sync_client
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from indexer.bulk import write_all
from indexer.catalog import Item
from indexer.metrics import IndexerMetrics
from indexer.scheduler import connect_orchestrator
from indexer.shadow import ShadowIndexer, location_of
from orchestrator.main import create_app
from search.client import build_client
from search.requests import ItemDocument, SlotVector, VersionedKnnQuery, index_action
from search.templates import install_items_template, template_name, vector_slot_mappings
from training.publish import VectorSet, publish
from training.registry import register_type

TARGET_BULK_RATIO = 0.9  # our bulk path vs parallel_bulk of the same documents


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def orchestrator_in_thread(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    """The orchestrator app served in a daemon thread at settings.orchestrator_url (stop: should_exit)."""
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
    return server, thread


def _drop_prefix(settings: Settings) -> None:
    # Deleting an index waits for its running merges to stop, and the template's removal queues behind it:
    # minutes at 1M after churn (the default 30 s cluster-manager timeout failed the 1M run's cleanup).
    wait = {"cluster_manager_timeout": "20m"}
    client = OpenSearch(hosts=[settings.opensearch_endpoint], timeout=1500)
    client.indices.delete(index=f"{settings.index_prefix}-*", ignore_unavailable=True, params=wait)
    client.indices.delete_index_template(name=template_name(settings.index_prefix), ignore=404, params=wait)
    client.close()


def _unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    matrix = rng.normal(size=(n, dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def _items(n: int) -> list[Item]:
    return [
        Item.from_document(
            {
                "item_id": str(i),
                "title": f"book {i}",
                "authors": ["someone"],
                "year": 2000,
                "language": "en",
                "average_rating": 4.0,
                "ratings_count": 100,
                "tags": ["fiction"],
            }
        )
        for i in range(1, n + 1)
    ]


async def _bulk_comparison(
    settings: Settings, etype: EmbeddingType, matrix: np.ndarray, items: list[Item], rounds: int = 2
) -> dict[str, Any]:
    search = build_client(settings, timeout=300)
    # The baseline: opensearch-py's own parallel bulk helper on its synchronous client.
    client = OpenSearch(hosts=[settings.opensearch_endpoint], timeout=300)
    await install_items_template(search, settings)
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
            await search.delete_index(index)
            await search.create_index(index, props, settings.hnsw_ef_search, build_meta={})
            began = time.perf_counter()
            if name == "ours":
                # The indexer's own path: chunks through the search port's bulk_write, N in flight.
                actions = [index_action(index, d) for d in docs]
                written = await write_all(search, actions, 500, settings.indexer_bulk_workers, "bench")
                assert written == len(docs)
            else:
                gen = ({"_index": index, "_id": d.item_id, "_source": d.source()} for d in docs)
                for ok, info in helpers.parallel_bulk(
                    client, gen, chunk_size=500, thread_count=4, request_timeout=300
                ):
                    assert ok, info
            seconds[name].append(time.perf_counter() - began)
            await search.delete_index(index)
    client.close()
    await search.aclose()
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


def run(
    settings: Settings, n: int = 20_000, dim: int = 128, queries: int = 200, compare_bulk: bool = True
) -> dict[str, Any]:
    """Both benchmarks on random unit vectors; returns the figures (ratios are measured in this run)."""
    return asyncio.run(_run(settings, n, dim, queries, compare_bulk))


async def _run(settings: Settings, n: int, dim: int, queries: int, compare_bulk: bool) -> dict[str, Any]:
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
    rclient = cast(redis.Redis, sync_client(settings))
    etype = EmbeddingType(
        name=f"bench-d{dim}", family=Family.DIRECT_DIRECT, dim=dim, similarity=Similarity.COSINE
    )
    rng = np.random.default_rng(0)
    matrix = _unit_vectors(rng, n, dim)
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
    if compare_bulk:
        result["bulk"] = await _bulk_comparison(settings, etype, matrix, items)
        ratio = result["bulk"]["ratio_ours_vs_parallel_bulk"]
        result["checks"] = [at_least("bulk throughput vs parallel_bulk", ratio, TARGET_BULK_RATIO)]

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
    server, thread = orchestrator_in_thread(settings)
    search = build_client(settings, timeout=600)
    try:
        async with connect_orchestrator(settings, timeout=60) as orch:
            while True:
                try:
                    info = await orch.type_info(etype.name)
                    if info.latest == frame.version_id:
                        break
                except Exception:  # not up yet
                    pass
                await asyncio.sleep(0.2)
            shadow = ShadowIndexer(settings, search, orch, items, IndexerMetrics.create(), batch_size=1000)
            began = time.perf_counter()
            built = await shadow.cycle(info)
            result["shadow_build"] = {
                "total_seconds": round(time.perf_counter() - began, 3),
                **built.timings.as_dict(),
                "recall_at_10_sample": built.recall,
            }
            loc = next(x for x in (await orch.type_info(etype.name)).indexed)
        from indexer.recall import exact_top_k, recall_at_k

        ids = [i.item_id for i in items]
        probes = rng.normal(size=(queries, dim)).astype(np.float32)
        truth = [exact_top_k(ids, matrix, q, etype.similarity, 10) for q in probes]
        # None: the index's own ef_search (the settings default); the others show the recall/latency trade.
        result["query"] = {}
        for ef in (None, 100, 512):
            lat, recalls = [], []
            for q, exact in zip(probes, truth, strict=True):
                query = VersionedKnnQuery(
                    loc, etype.similarity, q.tolist(), 10, source_fields=(), ef_search=ef
                )
                began = time.perf_counter()
                hits = await search.knn(query)
                lat.append(time.perf_counter() - began)
                recalls.append(recall_at_k([h.item_id for h in hits], exact))
            result["query"][f"ef_search_{ef or settings.hnsw_ef_search}"] = {
                "p50_ms": round(statistics.median(lat) * 1000, 2),
                "recall_at_10_random_queries": round(float(np.mean(recalls)), 4),
            }
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        _drop_prefix(settings)
        await search.aclose()
        for key in rclient.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
            rclient.delete(key)
        rclient.close()
    return result


def sweep(
    settings: Settings,
    n: int = 20_000,
    dim: int = 128,
    builds: tuple[tuple[int, int], ...] = ((16, 128), (16, 256), (32, 256)),
    ef_searches: tuple[int, ...] = (100, 256, 512),
    queries: int = 100,
) -> dict[str, Any]:
    """HNSW tuning: recall@10 vs exact and query p50 per (m, ef_construction) build and ef_search.

    Random unit vectors are the hard case (no cluster structure); real embeddings reach higher recall
    at the same settings. Each build is timed (bulk, refresh + force-merge) since m and ef_construction
    are paid for at indexing time.
    """
    return asyncio.run(_sweep(settings, n, dim, builds, ef_searches, queries))


async def _sweep(
    settings: Settings,
    n: int,
    dim: int,
    builds: tuple[tuple[int, int], ...],
    ef_searches: tuple[int, ...],
    queries: int,
) -> dict[str, Any]:
    from indexer.recall import exact_top_k, recall_at_k

    token = f"b{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(update={"key_prefix": token, "index_prefix": token})
    etype = EmbeddingType(
        name=f"sweep-d{dim}", family=Family.DIRECT_DIRECT, dim=dim, similarity=Similarity.COSINE
    )
    rng = np.random.default_rng(1)
    matrix = _unit_vectors(rng, n, dim)
    probes = _unit_vectors(rng, queries, dim)
    ids = [str(i) for i in range(1, n + 1)]
    exact = [exact_top_k(ids, matrix, q, etype.similarity, 10) for q in probes]
    items = _items(n)
    search = build_client(settings, timeout=3600)
    rows: list[dict[str, Any]] = []
    try:
        for m, ef_construction in builds:
            tuned = settings.model_copy(update={"hnsw_m": m, "hnsw_ef_construction": ef_construction})
            await install_items_template(search, tuned)
            index = f"{tuned.index_prefix}-items-sweep-m{m}-ef{ef_construction}"
            slots = vector_slot_mappings(etype, tuned, (Slot.A,))
            await search.create_index(index, slots, tuned.hnsw_ef_search, build_meta={})
            actions = [
                index_action(
                    index,
                    ItemDocument(
                        it.item_id, it.document(), (SlotVector.of(etype.name, Slot.A, "v", matrix[i]),)
                    ),
                )
                for i, it in enumerate(items)
            ]
            began = time.perf_counter()
            await write_all(search, actions, 500, tuned.indexer_bulk_workers, "sweep")
            bulk = time.perf_counter() - began
            began = time.perf_counter()
            await search.finish_build(index)
            await search.force_merge(index)
            merge = time.perf_counter() - began
            location = location_of(tuned, etype.name, "v", n, datetime.now(UTC)).model_copy(
                update={"index": index}
            )
            for ef in ef_searches:
                lat, recalls = [], []
                for q, truth in zip(probes, exact, strict=True):
                    query = VersionedKnnQuery(
                        location, etype.similarity, q.tolist(), 10, source_fields=(), ef_search=ef
                    )
                    began = time.perf_counter()
                    hits = await search.knn(query)
                    lat.append(time.perf_counter() - began)
                    recalls.append(recall_at_k([h.item_id for h in hits], truth))
                rows.append(
                    {
                        "m": m,
                        "ef_construction": ef_construction,
                        "ef_search": ef,
                        "recall_at_10": round(float(np.mean(recalls)), 4),
                        "p50_ms": round(statistics.median(lat) * 1000, 2),
                        "bulk_seconds": round(bulk, 1),
                        "refresh_merge_seconds": round(merge, 1),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
            await search.delete_index(index)
    finally:
        _drop_prefix(settings)
        await search.aclose()
    return {"n": n, "dim": dim, "queries": queries, "vectors": "random unit (hard case)", "rows": rows}


def main(argv: list[str]) -> None:
    """`python -m bench.indexing [run|shadow|sweep|bulk] [N]` (a bare N means run; shadow: no bulk race)."""
    what = argv[0] if argv and not argv[0].isdigit() else "run"
    numbers = [int(a) for a in argv if a.isdigit()]
    size = numbers[0] if numbers else 20_000
    settings = Settings.model_validate({})
    if what == "sweep":
        out = sweep(settings, n=size)
    elif what == "shadow":
        out = run(settings, n=size, compare_bulk=False)
    elif what == "bulk":
        out = bulk_only(settings, n=size)
    else:
        out = run(settings, n=size)
    print(json.dumps(out, indent=2))


def bulk_only(settings: Settings, n: int = 20_000, dim: int = 128) -> dict[str, Any]:
    """Only the bulk comparison (ours vs parallel_bulk), same documents, same run."""
    token = f"b{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(update={"key_prefix": token, "index_prefix": token})
    etype = EmbeddingType(
        name=f"bench-d{dim}", family=Family.DIRECT_DIRECT, dim=dim, similarity=Similarity.COSINE
    )
    try:
        matrix = _unit_vectors(np.random.default_rng(0), n, dim)
        return {"n": n, "dim": dim, **asyncio.run(_bulk_comparison(settings, etype, matrix, _items(n)))}
    finally:
        _drop_prefix(settings)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
