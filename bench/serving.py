"""/v1/recommend latency and throughput vs the same orchestrator call + OpenSearch query made without serving.

Every side runs in the same run against the same servers. Serving runs as its own process (`lockstep serving
serve`), like the orchestrator; its user-vector and result caches are off so every request makes the same
orchestrator call and k-NN query as the others (exclude_seen off: the others read no profile). Each side
sends serving's own k-NN request (same body, candidates and ef_search, serving.knn's functions).
- raw: a script on aiohttp, the standard async client a hand-written script would use (the load generator
  calls serving with it too);
- raw_keepalive: the same script on serving's own clients (orchestrator_client, the search port on
  AsyncOpenSearch), built as serving builds them;
- floor: bench.serving_floor, a bare ASGI app under uvicorn making the two calls on serving's clients with
  nothing around them, so the report splits serving's overhead into what any service in front of the two
  calls costs here (floor_vs_raw) and what serving's own code adds (serving_vs_floor);
- serving.
The sides run in rounds, one block each in rotating order: the shared box's load drifts within a run, and
each side sees the same drift. Targets, against the floor, as medians of the per-round ratios at 1 and 8
connections: p50 <= 1.15x and p99 <= 1.3x; throughput >= 0.85x at 8; serving's server CPU per request at
most 0.3 ms above the floor's (the median of the per-round differences).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import httpx
import numpy as np
import orjson
import redis
from opensearchpy import OpenSearch

from bench.checks import at_least, at_most
from bench.orchestrator import store_environment
from bench.serving_floor import floor_command, floor_environment
from contract import routes
from contract.indexing import IndexedLocation, Mode, Slot, live_index, vector_field, version_field
from contract.keys import Keys
from contract.redis_clients import sync_client
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from orchestrator_client import OrchestratorClient, connection_pool
from search.client import build_client
from search.opensearch import HITS_ONLY
from search.port import SearchEngine
from search.requests import ItemDocument, SlotVector, VersionedKnnQuery, candidates, index_action, knn_body
from search.templates import install_items_template, vector_slot_mappings
from serving.knn import ef_search
from training.publish import VectorSet, publish
from training.registry import register_type

ITEMS, USERS, DIM, K = 5_000, 1_000, 32, 10
SEARCH_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}  # as search.opensearch
ROUNDS, ROUND_REQUESTS = 10, 300  # per side and connection count: 3,000 requests each
CHECKED_USERS = 20  # users whose answers must agree across the sides before anything is timed
# Against the floor (issue: serving's target re-stated): medians over rounds of the ratios, and of the CPU
# differences in ms.
TARGETS = {"p50": 1.15, "p99": 1.3, "throughput": 0.85, "cpu_ms": 0.3}
TYPE = "bench-d32"
JSON_TYPE = {"Content-Type": "application/json"}

CLI = [sys.executable, "-c", "from cli.main import app; app()"]
Call = Callable[[int], Awaitable[list[str]]]  # one request for user n; the item ids it returned


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def setup_world(settings: Settings, keys: Keys) -> tuple[EmbeddingType, IndexedLocation]:
    rng = np.random.default_rng(0)
    client = cast(redis.Redis, sync_client(settings))
    etype = EmbeddingType(name=TYPE, family=Family.DIRECT_DIRECT, dim=DIM, similarity=Similarity.DOT)
    register_type(client, keys, etype)
    users = rng.standard_normal((USERS, DIM)).astype(np.float32)
    items = rng.standard_normal((ITEMS, DIM)).astype(np.float32)
    frame = Frame(datetime(2017, 1, 1, tzinfo=UTC), datetime(2017, 2, 1, tzinfo=UTC))
    result = publish(
        client,
        keys,
        etype,
        frame,
        users=VectorSet(tuple(f"u{i}" for i in range(USERS)), users),
        items=VectorSet(tuple(str(i) for i in range(ITEMS)), items),
    )
    client.close()
    version = result.manifest.version
    index = live_index(settings.index_prefix)
    actions = [
        index_action(
            index,
            ItemDocument(
                str(i),
                {"title": f"Book {i}", "year": 1950 + i % 70, "language": ("eng", "fre")[i % 2]},
                (SlotVector.of(TYPE, Slot.A, version, items[i].tolist()),),
            ),
        )
        for i in range(ITEMS)
    ]

    async def build(search: SearchEngine) -> None:
        await install_items_template(search, settings)
        await search.create_index(index, vector_slot_mappings(etype, settings), settings.hnsw_ef_search)
        report = await search.bulk_write(actions, refresh=True)
        assert report.ok, report.failed
        await search.force_merge(index)
        await search.aclose()

    asyncio.run(build(build_client(settings, timeout=120)))
    loc = IndexedLocation(
        version=version,
        mode=Mode.INCREMENTAL,
        index=index,
        vector_field=vector_field(TYPE, Slot.A),
        version_field=version_field(TYPE, Slot.A),
        indexed_at=datetime.now(UTC),
        item_count=ITEMS,
    )
    return etype, loc


async def _register(settings: Settings, loc: IndexedLocation) -> None:
    key = settings.indexer_key.get_secret_value()
    async with OrchestratorClient(settings.orchestrator_url, key, timeout=10) as client:
        await client.refresh_type(TYPE)  # rather than wait for its first poll
        await client.record_indexed(TYPE, loc)
        await client.set_in_use(TYPE, None, loc.version, "bench")


def recommend_call(session: aiohttp.ClientSession, urls: list[str]) -> Call:
    """POST /v1/recommend for user n to serving at urls[n % len(urls)] (round-robin over processes)."""

    async def call(n: int) -> list[str]:
        body = {"user_id": f"u{n % USERS}", "embedding_type": TYPE, "k": K, "exclude_seen": False}
        async with session.post(
            urls[n % len(urls)] + "/v1/recommend", data=orjson.dumps(body), headers=JSON_TYPE
        ) as response:
            response.raise_for_status()
            return [item["item_id"] for item in orjson.loads(await response.read())["items"]]

    return call


async def _block(one: Call, connections: int, first: int, requests: int) -> tuple[list[float], float]:
    """`requests` calls of `one(n)`, n from `first`, over `connections` workers: latencies, elapsed (s)."""
    latencies: list[float] = []
    counter = iter(range(first, first + requests))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            await one(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, time.perf_counter() - started


def _hit_ids(content: bytes) -> list[str]:
    return [hit["_id"] for hit in orjson.loads(content)["hits"]["hits"]]


def _figures(latencies: list[float], elapsed: float) -> dict[str, float]:
    ms = np.array(latencies) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "throughput_rps": round(len(ms) / elapsed, 1),
    }


def _ratios(raw: dict[str, float], serving: dict[str, float]) -> dict[str, float]:
    return {
        "p50": round(serving["p50_ms"] / raw["p50_ms"], 3),
        "p99": round(serving["p99_ms"] / raw["p99_ms"], 3),
        "throughput": round(serving["throughput_rps"] / raw["throughput_rps"], 3),
    }


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, all its threads (Linux: the scheduler's nanoseconds; else 0, the figure
    reads 0). /proc/<pid>/stat counts in 10 ms ticks: a 300-request block would read in steps of 0.03 ms."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks) / 1e9
    except (OSError, ValueError):
        return 0.0


async def interleaved(
    sides: dict[str, Call], connections: int, servers: dict[str, int]
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """ROUNDS rounds; in each, every side runs one block, in rotating order: drift of the box hits all alike.

    Returns each side's figures pooled over the rounds, with the CPU per request of each side's own server
    process (`servers`: side -> pid), and each side's figures per round, CPU included (the targets are
    medians over rounds, so one noisy round cannot decide a verdict).
    """
    latencies: dict[str, list[float]] = {name: [] for name in sides}
    elapsed = dict.fromkeys(sides, 0.0)
    cpu = dict.fromkeys(servers, 0.0)
    names = list(sides)
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for name in names:  # warm-up: connections, JIT of the servers
        await _block(sides[name], connections, 0, 50)
    for number in range(ROUNDS):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            before = cpu_seconds(servers[name]) if name in servers else 0.0
            got, took = await _block(sides[name], connections, number * ROUND_REQUESTS, ROUND_REQUESTS)
            latencies[name].extend(got)
            elapsed[name] += took
            rounds[name].append(_figures(got, took))
            if name in servers:
                used = cpu_seconds(servers[name]) - before
                cpu[name] += used
                rounds[name][-1]["cpu_ms"] = used * 1000 / ROUND_REQUESTS
    figures: dict[str, Any] = {name: _figures(latencies[name], elapsed[name]) for name in names}
    for name in servers:
        figures[name]["server_cpu_ms_per_request"] = round(cpu[name] * 1000 / len(latencies[name]), 3)
    return figures, rounds


def median_cpu_over(base: list[dict[str, float]], side: list[dict[str, float]]) -> float:
    """The median over rounds of each round's server CPU per request of `side` minus `base`'s (ms)."""
    return round(float(np.median([s["cpu_ms"] - b["cpu_ms"] for b, s in zip(base, side, strict=True)])), 3)


def median_ratios(base: list[dict[str, float]], side: list[dict[str, float]]) -> dict[str, float]:
    """The median over rounds of each round's side/base ratio (p50, p99, throughput)."""
    per_round = [_ratios(b, s) for b, s in zip(base, side, strict=True)]
    return {key: round(float(np.median([r[key] for r in per_round])), 3) for key in per_round[0]}


async def _measure(
    settings: Settings, etype: EmbeddingType, loc: IndexedLocation, urls: dict[str, str], pids: dict[str, int]
) -> dict[str, Any]:
    reader = {"Authorization": f"Bearer {settings.reader_key.get_secret_value()}"}
    orch_url, search_url = settings.orchestrator_url, settings.opensearch_endpoint
    beam = candidates(K), ef_search(settings, K)
    timeout = 30.0

    def knn(vector: list[float]) -> VersionedKnnQuery:
        return VersionedKnnQuery(
            location=loc,
            similarity=etype.similarity,
            vector=vector,
            k=K,
            candidates=beam[0],
            ef_search=beam[1],
        )

    def query(vector: list[float]) -> bytes:
        return orjson.dumps(knn_body(knn(vector)))

    search_path = f"/{loc.index}/_search?filter_path={HITS_ONLY}"
    # serving's own clients, built as serving builds them (serving.state)
    own_orch = OrchestratorClient(
        orch_url, settings.reader_key.get_secret_value(), timeout=timeout, max_connections=16
    )
    own_search = build_client(settings, timeout=timeout, pool_size=16)
    async with (
        aiohttp.ClientSession(headers=reader, connector=connection_pool(16)) as serving,
        aiohttp.ClientSession(headers=reader, connector=connection_pool(16)) as orch,
        aiohttp.ClientSession(connector=connection_pool(16)) as search,
    ):
        via_serving = recommend_call(serving, [urls["serving"]])

        async def via_floor(n: int) -> list[str]:
            body = {"user_id": f"u{n % USERS}"}
            async with serving.post(
                urls["floor"] + "/v1/recommend", data=orjson.dumps(body), headers=JSON_TYPE
            ) as response:
                response.raise_for_status()
                return [str(item_id) for item_id in orjson.loads(await response.read())["items"]]

        async def raw(n: int) -> list[str]:
            async with orch.get(orch_url + routes.user_vector_path(TYPE, f"u{n % USERS}")) as response:
                response.raise_for_status()
                vec = orjson.loads(await response.read())
            async with search.post(
                search_url + search_path, data=query(vec["vector"]), headers=SEARCH_HEADERS
            ) as response:
                response.raise_for_status()
                return _hit_ids(await response.read())

        async def raw_keepalive(n: int) -> list[str]:
            user = await own_orch.user_vector(TYPE, f"u{n % USERS}")
            return [hit.item_id for hit in await own_search.knn(knn(user.vector))]

        sides: dict[str, Call] = {
            "raw": raw,
            "raw_keepalive": raw_keepalive,
            "floor": via_floor,
            "serving": via_serving,
            "serving_routed": recommend_call(serving, [urls["serving_routed"]]),
        }
        for n in range(CHECKED_USERS):  # every side must be doing the same work: the same answer
            answers = {name: await side(n) for name, side in sides.items()}
            if len({tuple(ids) for ids in answers.values()}) != 1 or len(answers["serving"]) != K:
                raise RuntimeError(f"the sides disagree for user u{n}: {answers}")
        results: dict[str, Any] = {}
        for connections in (1, 8):
            figures, rounds = await interleaved(sides, connections, pids)
            results[f"c{connections}"] = {
                **figures,
                "serving_vs_floor_median": median_ratios(rounds["floor"], rounds["serving"]),
                "routed_vs_floor_median": median_ratios(rounds["floor"], rounds["serving_routed"]),
                "direct_dispatch_cpu_saved_ms": round(
                    figures["serving_routed"]["server_cpu_ms_per_request"]
                    - figures["serving"]["server_cpu_ms_per_request"],
                    3,
                ),
                "serving_p50_vs_raw_per_round": [
                    round(s["p50_ms"] / r["p50_ms"], 3)
                    for r, s in zip(rounds["raw"], rounds["serving"], strict=True)
                ],
                "ratio": _ratios(figures["raw"], figures["serving"]),
                "server_cpu_over_floor_ms": median_cpu_over(rounds["floor"], rounds["serving"]),
                "ratio_vs_raw_keepalive": _ratios(figures["raw_keepalive"], figures["serving"]),
                "floor_vs_raw": _ratios(figures["raw"], figures["floor"]),
                "serving_vs_floor": _ratios(figures["floor"], figures["serving"]),
                # The same gaps in milliseconds: what serving adds per request, whatever the box's speed.
                "added_p50_ms": {
                    "vs_raw": round(figures["serving"]["p50_ms"] - figures["raw"]["p50_ms"], 3),
                    "vs_floor": round(figures["serving"]["p50_ms"] - figures["floor"]["p50_ms"], 3),
                },
            }
        await own_orch.aclose()
        await own_search.aclose()
        return results


def world_settings(settings: Settings) -> Settings:
    """`settings` with a prefix of this run's own and free ports for the orchestrator and serving."""
    token = f"b{uuid.uuid4().hex[:8]}"
    return settings.model_copy(
        update={
            "key_prefix": token,
            "index_prefix": token,
            "orchestrator_url": f"http://127.0.0.1:{_port()}",
            "serving_url": f"http://127.0.0.1:{_port()}",
        }
    )


def _environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        **store_environment(settings),
        "LOCKSTEP_ORCHESTRATOR_URL": settings.orchestrator_url,
        "LOCKSTEP_SERVING_URL": settings.serving_url,
        "LOCKSTEP_ORCHESTRATOR_POLL_SECONDS": "0.5",
        "LOCKSTEP_SERVING_USER_CACHE_SECONDS": "0",
        "LOCKSTEP_SERVING_RESULT_CACHE_SECONDS": "0",
    }


def start_stack(
    settings: Settings,
    loc: IndexedLocation,
    processes: list[subprocess.Popen[bytes]],
    servings: int = 1,
    serving_env: Mapping[str, str] | None = None,
) -> list[str]:
    """The orchestrator (with `loc` registered and in use), then `servings` serving processes: their URLs.

    Each process is appended to `processes` as soon as it starts, so the caller's cleanup stops it even
    when a later start fails. The first serving listens on settings.serving_url, the others on free ports.
    """
    env = _environment(settings)
    processes.append(subprocess.Popen([*CLI, "orchestrator", "serve"], env=env))
    wait_healthy(settings.orchestrator_url)
    asyncio.run(_register(settings, loc))
    ports = [int(settings.serving_url.rsplit(":", 1)[1])] + [_port() for _ in range(servings - 1)]
    for port in ports:
        serve = [*CLI, "serving", "serve", "--port", str(port)]
        processes.append(subprocess.Popen(serve, env={**env, **(serving_env or {})}))
    return [f"http://127.0.0.1:{port}" for port in ports]


def stop_stack(settings: Settings, loc: IndexedLocation, processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop the processes, delete the run's index, template and keys."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=20)
    search = OpenSearch(hosts=settings.opensearch_hosts, timeout=60)
    search.indices.delete(index=loc.index, ignore_unavailable=True)
    search.indices.delete_index_template(name=f"{settings.index_prefix}-items", ignore=404)
    search.close()
    client = sync_client(settings)
    batch = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
    if batch:
        client.delete(*batch)
    client.close()


def run(settings: Settings) -> dict[str, Any]:
    """Set up a 5k-item world, start orchestrator + serving processes, measure both sides, clean up."""
    settings = world_settings(settings)
    etype, loc = setup_world(settings, Keys(settings.key_prefix))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        start_stack(settings, loc, processes)
        floor_port = _port()
        floor_env = floor_environment(_environment(settings), etype, loc)
        processes.append(subprocess.Popen(floor_command(floor_port), env=floor_env))
        # The same serving through FastAPI's router: the A/B that keeps service.direct (bench/README.md).
        routed_port = _port()
        routed_env = {**_environment(settings), "LOCKSTEP_SERVING_DIRECT_DISPATCH": "false"}
        processes.append(
            subprocess.Popen([*CLI, "serving", "serve", "--port", str(routed_port)], env=routed_env)
        )
        urls = {
            "serving": settings.serving_url,
            "floor": f"http://127.0.0.1:{floor_port}",
            "serving_routed": f"http://127.0.0.1:{routed_port}",
        }
        for url in urls.values():
            wait_healthy(url)
        pids = {"serving": processes[1].pid, "floor": processes[2].pid, "serving_routed": processes[3].pid}
        figures = asyncio.run(_measure(settings, etype, loc, urls, pids))
    finally:
        stop_stack(settings, loc, processes)
    checks = []
    for level in ("c1", "c8"):
        ratio = figures[level]["serving_vs_floor_median"]
        checks += [
            at_most(f"{level} p50 vs floor", ratio["p50"], TARGETS["p50"]),
            at_most(f"{level} p99 vs floor", ratio["p99"], TARGETS["p99"]),
        ]
        added = figures[level]["server_cpu_over_floor_ms"]
        checks.append(at_most(f"{level} server CPU per request over floor", added, TARGETS["cpu_ms"], " ms"))
    checks.append(
        at_least(
            "c8 throughput vs floor",
            figures["c8"]["serving_vs_floor_median"]["throughput"],
            TARGETS["throughput"],
        )
    )
    return {
        "benchmark": "serving",
        "items": ITEMS,
        "dim": DIM,
        "k": K,
        "rounds": ROUNDS,
        "requests_per_round": ROUND_REQUESTS,
        "load_average": os.getloadavg(),
        "targets": TARGETS,
        **figures,
        "checks": checks,
    }


if __name__ == "__main__":
    print(orjson.dumps(run(Settings(development=True)), option=orjson.OPT_INDENT_2).decode())
