"""The cluster variant (issue 16): the cluster topology against the single node, in the same run.

Both topologies run at once: the single node of the settings, and the local cluster topology (3 OpenSearch
nodes, a Redis Cluster of 3 primaries + 3 replicas) that `stack.cluster.client_environment` points at.
Each figure is a ratio of cluster to single (or of 2 serving processes to 1) measured in this process,
the sides alternating in rounds so both see the same drift of the shared box:

- publish: `training.publish.publish` of the same vectors, the cluster side waiting for its default one
  replica per commit, the standalone side for none (each topology's own default);
- orchestrator: GET user vector and items:batch of 1,000 through an orchestrator under uvicorn on each
  Redis, requests alternating between the two (bench.orchestrator's calls and timers);
- serving: /v1/recommend on the cluster topology, spread round-robin over 2 serving processes vs sent
  to 1 of them, at 8 and 32 connections (bench.serving's world, processes and rounds);
- shadow build: the indexer's shadow cycle (bench.indexing's run) on 3 shards with 1 replica each over the
  3 nodes vs 1 shard without replica on the single node: build time, and recall@10.

Not in `make bench`'s default list: it needs the cluster topology up too (`make bench-cluster`).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
from typing import Any

import aiohttp

from bench import indexing
from bench.checks import Check, at_least, at_most
from bench.orchestrator import (
    alternating_latencies,
    cleanup,
    latency_summary,
    reader_calls,
    seed,
    serve_orchestrator,
    throughput,
)
from bench.publish import ETYPE, bench_keys, delete_prefix, timed_publish, vector_sets
from bench.serving import (
    Call,
    cpu_seconds,
    interleaved,
    median_ratios,
    recommend_call,
    setup_world,
    start_stack,
    stop_stack,
    wait_healthy,
    world_settings,
)
from contract.keys import Keys
from contract.redis_clients import sync_client
from contract.replication import Replication
from contract.settings import Settings
from orchestrator_client import connection_pool
from stack.cluster import client_environment
from training.registry import register_type

PUBLISH_USERS, PUBLISH_ITEMS, PUBLISH_ROUNDS = 50_000, 10_000, 4
USER_REQUESTS, BATCH_REQUESTS = 2_000, 40  # per side, alternating
THROUGHPUT_ROUNDS = 4  # per side and call, alternating (each bench.orchestrator.THROUGHPUT_SECONDS long)
CONNECTIONS = (8, 32)
SHADOW_ITEMS, SHADOW_DIM, SHADOW_QUERIES, SHADOW_ROUNDS = 10_000, 128, 50, 2
SIDES = ("single", "cluster")
# Set from what this 2-core box, shared with 3 OpenSearch JVMs and 6 Redis nodes, can do (bench/README.md):
# below the figures of the first two full runs (in parentheses), by about what they moved between runs.
TARGETS = {
    "publish_throughput": 0.6,  # cluster vs standalone, at least (0.87, then 0.69)
    "user_p50": 1.2,  # at most (1.0, 1.05)
    "user_rps": 0.8,  # at least (0.98, then 1.65 over 2 rounds: now the median of 4 rounds' ratios)
    "batch_p50": 1.2,  # at most (0.99, 1.07)
    "batch_rps": 0.7,  # at least (0.79, 0.98)
    # 2 processes vs 1, at least, at 8 and at 32 connections (1.0 and 1.1, then 0.93 and 1.06): no real
    # loss, not 2x, for the two cores are already taken by the OpenSearch nodes each request reaches.
    "serving_throughput": 0.9,
    # at most (0.66, 0.40: 3 shards build in parallel on 3 nodes; 1.8 at 1k items: fixed costs weigh)
    "shadow_seconds": 1.5,
    "shadow_recall": 0.98,  # cluster vs single recall@10 on random queries, at least (1.0, 1.0)
}


def cluster_settings(settings: Settings) -> Settings:
    """`settings` pointed at every node of the local cluster topology (the ports its cluster_* settings name).

    Built through validation, so the cluster side is a Settings like any process would read from the
    same LOCKSTEP_* variables.
    """
    fields: dict[str, Any] = {
        name.removeprefix("LOCKSTEP_").lower(): value for name, value in client_environment(settings).items()
    }
    fields["redis_cluster_nodes"] = json.loads(fields["redis_cluster_nodes"])  # a JSON list in the variable
    return Settings.model_validate({**settings.model_dump(), **fields})


def _rotation(number: int) -> tuple[str, ...]:
    """The sides' order in round `number`: who goes first alternates."""
    return SIDES if number % 2 == 0 else SIDES[::-1]


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3)


def _publish(sides: dict[str, Settings]) -> dict[str, Any]:
    """The same vectors published on each Redis, a fresh version per round; best round of each side."""
    sets = vector_sets(PUBLISH_USERS, PUBLISH_ITEMS)
    clients = {name: sync_client(settings) for name, settings in sides.items()}
    keys = {name: bench_keys(settings) for name, settings in sides.items()}
    # Each topology's own default: the cluster's commits wait for a replica (redis_wait_replicas=1).
    replication = {name: Replication.of(settings) for name, settings in sides.items()}
    seconds: dict[str, list[float]] = {name: [] for name in SIDES}
    try:
        for name in SIDES:
            register_type(clients[name], keys[name], ETYPE)
        for number in range(PUBLISH_ROUNDS):
            for name in _rotation(number):
                seconds[name].append(
                    timed_publish(clients[name], keys[name], number, sets, replication[name])
                )
    finally:
        for name in SIDES:
            delete_prefix(clients[name], keys[name])
            clients[name].close()
    vectors = PUBLISH_USERS + PUBLISH_ITEMS
    best = {name: min(seconds[name]) for name in SIDES}
    return {
        "vectors": vectors,
        "replicas_waited_for": {name: replication[name].replicas for name in SIDES},
        "seconds": {name: [round(x, 3) for x in seconds[name]] for name in SIDES},
        "vectors_per_second": {name: round(vectors / best[name]) for name in SIDES},
        "throughput_ratio": _ratio(best["single"], best["cluster"]),
    }


def _orchestrator(sides: dict[str, Settings]) -> dict[str, Any]:
    """An orchestrator process on each Redis, the same data seeded in both; reads alternate between them."""
    versions = {name: seed(settings) for name, settings in sides.items()}
    servers = {name: serve_orchestrator(settings) for name, settings in sides.items()}
    clients = []
    try:
        user_calls, batch_calls = {}, {}
        for name in SIDES:
            process, url = servers[name]
            wait_healthy(url)
            client, user_calls[name], batch_calls[name] = reader_calls(sides[name], url, versions[name])
            clients.append(client)
        # Warm both (connections, slot maps, first-request costs) before measuring.
        alternating_latencies(user_calls, 200)
        alternating_latencies(batch_calls, 10, block=5)
        users = alternating_latencies(user_calls, USER_REQUESTS)
        batches = alternating_latencies(batch_calls, BATCH_REQUESTS, block=10)
        rps: dict[str, dict[str, list[float]]] = {
            call: {name: [] for name in SIDES} for call in ("users", "batch")
        }
        for number in range(THROUGHPUT_ROUNDS):
            for name in _rotation(number):
                rps["users"][name].append(throughput(user_calls[name]))
                rps["batch"][name].append(throughput(batch_calls[name]))
    finally:
        for client in clients:
            client.close()
        for process, _ in servers.values():
            process.terminate()
        for process, _ in servers.values():
            process.wait(timeout=10)
        for settings in sides.values():
            cleanup(settings)
    result: dict[str, Any] = {}
    for label, samples, call in (("users_get", users, "users"), ("items_batch_1000", batches, "batch")):
        mean_rps = {name: statistics.mean(rps[call][name]) for name in SIDES}
        result[label] = {
            **{name: {**latency_summary(samples[name]), "rps": round(mean_rps[name], 1)} for name in SIDES},
            "p50_ratio": _ratio(statistics.median(samples["cluster"]), statistics.median(samples["single"])),
            # The median of the rounds' own ratios: a round disturbed by the box moves one ratio, not all.
            "rps_ratio": round(
                statistics.median(
                    c / s for c, s in zip(rps[call]["cluster"], rps[call]["single"], strict=True)
                ),
                3,
            ),
        }
    return result


def _serving(cluster: Settings) -> dict[str, Any]:
    """bench.serving's world on the cluster topology, with an orchestrator and 2 serving processes."""
    # The live index spread like the cluster tier's: 3 shards, each with a replica on another node.
    settings = world_settings(cluster.model_copy(update={"live_shards": 3, "live_replicas": 1}))
    _, loc = setup_world(settings, Keys(settings.key_prefix))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        urls = start_stack(settings, loc, processes, servings=2)
        for url in urls:
            wait_healthy(url)
        second = processes[2].pid  # orchestrator, first serving, second serving
        before = cpu_seconds(second)
        figures = asyncio.run(_serving_rounds(urls, settings.reader_key.get_secret_value()))
        figures["second_process_cpu_seconds"] = round(cpu_seconds(second) - before, 2)
    finally:
        stop_stack(settings, loc, processes)
    return figures


async def _serving_rounds(urls: list[str], key: str) -> dict[str, Any]:
    # Enough pooled connections for 32 concurrent requests to each process.
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(
        connector=connection_pool(2 * max(CONNECTIONS)), headers=headers
    ) as session:
        calls: dict[str, Call] = {
            "one": recommend_call(session, urls[:1]),
            "two": recommend_call(session, urls),
        }
        for n in range(4):  # both processes give the one process's answer (n and n + 1: both of them)
            if await calls["one"](n) != await calls["two"](n):
                raise RuntimeError(f"2 serving processes and 1 disagree for user u{n}")
        result: dict[str, Any] = {"connections": [f"c{c}" for c in CONNECTIONS]}
        for connections in CONNECTIONS:
            figures, rounds = await interleaved(calls, connections, {})
            result[f"c{connections}"] = {
                **figures,
                "two_vs_one_median": median_ratios(rounds["one"], rounds["two"]),
            }
        return result


def _shadow(sides: dict[str, Settings]) -> dict[str, Any]:
    """bench.indexing's shadow build (no bulk race) on each side, alternating; best time of each side."""
    layouts = {
        "single": sides["single"].model_copy(update={"shadow_shards": 1, "shadow_replicas": 0}),
        "cluster": sides["cluster"].model_copy(update={"shadow_shards": 3, "shadow_replicas": 1}),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SIDES}
    for number in range(SHADOW_ROUNDS):
        for name in _rotation(number):
            runs[name].append(
                indexing.run(layouts[name], SHADOW_ITEMS, SHADOW_DIM, SHADOW_QUERIES, compare_bulk=False)
            )
    best = {name: min(runs[name], key=lambda r: r["shadow_build"]["total_seconds"]) for name in SIDES}
    recall = {
        name: statistics.mean(
            query["recall_at_10_random_queries"]
            for r in runs[name]
            for query in [r["query"][f"ef_search_{layouts[name].hnsw_ef_search}"]]
        )
        for name in SIDES
    }
    return {
        "items": SHADOW_ITEMS,
        "dim": SHADOW_DIM,
        "layout": {
            name: {"shards": layouts[name].shadow_shards, "replicas": layouts[name].shadow_replicas}
            for name in SIDES
        },
        "seconds": {name: [r["shadow_build"]["total_seconds"] for r in runs[name]] for name in SIDES},
        "best_build": {name: best[name]["shadow_build"] for name in SIDES},
        "query": {name: best[name]["query"] for name in SIDES},
        "recall_at_10": {name: round(recall[name], 4) for name in SIDES},
        "time_ratio": _ratio(
            best["cluster"]["shadow_build"]["total_seconds"], best["single"]["shadow_build"]["total_seconds"]
        ),
        "recall_ratio": _ratio(recall["cluster"], recall["single"]),
    }


def run(settings: Settings) -> dict[str, Any]:
    """Every side on both topologies; figures, ratios and checks."""
    sides = {"single": settings, "cluster": cluster_settings(settings)}
    publish = _publish(sides)
    orchestrator = _orchestrator(sides)
    serving = _serving(sides["cluster"])
    shadow = _shadow(sides)
    reads = {"GET users/{id}": orchestrator["users_get"], "items:batch": orchestrator["items_batch_1000"]}
    checks: list[Check] = [
        at_least(
            "publish throughput, cluster vs standalone",
            publish["throughput_ratio"],
            TARGETS["publish_throughput"],
        )
    ]
    for (label, figures), target in zip(reads.items(), ("user", "batch"), strict=True):
        checks += [
            at_most(f"{label} p50, cluster vs standalone", figures["p50_ratio"], TARGETS[f"{target}_p50"]),
            at_least(f"{label} rps, cluster vs standalone", figures["rps_ratio"], TARGETS[f"{target}_rps"]),
        ]
    for level in serving["connections"]:
        checks.append(
            at_least(
                f"serving throughput at {level}, 2 processes vs 1",
                serving[level]["two_vs_one_median"]["throughput"],
                TARGETS["serving_throughput"],
            )
        )
    checks += [
        at_most("shadow build time, 3 nodes vs 1", shadow["time_ratio"], TARGETS["shadow_seconds"]),
        at_least("shadow recall@10, 3 nodes vs 1", shadow["recall_ratio"], TARGETS["shadow_recall"]),
    ]
    return {
        "benchmark": "cluster",
        "load_average": os.getloadavg(),
        "cluster": {
            "opensearch": sides["cluster"].opensearch_hosts,
            "redis": sides["cluster"].redis_cluster_nodes,
        },
        "targets": TARGETS,
        "publish": publish,
        "orchestrator": orchestrator,
        "serving": serving,
        "shadow_build": shadow,
        "checks": checks,
    }
