"""Serving's p99 during a rollout vs at steady state, with the indexer's throttle off and on.

The serving benchmark's world (orchestrator and serving processes, a 5k-item index in use) answers a paced
load of RATE requests/s throughout: an open loop, as real traffic does not slow down when the box is busy,
each latency timed from the moment its request was due. Meanwhile, in rounds, a new version of a second
type (BUILD_ITEMS x BUILD_DIM) is published and built by the shadow indexer in a process of its own
(`bench.rollout_build`): once unthrottled (the defaults), once throttled (THROTTLE). Each round's steady
p99 is that of the quiet blocks before and after its builds. Target (issue: rollouts that don't hurt
serving): the throttled build's p99 <= 2x the steady p99, median of the rounds.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
import matplotlib

matplotlib.use("Agg")  # files only: no display here
import matplotlib.pyplot as plt
import numpy as np
import orjson
import redis
from opensearchpy import OpenSearch

from bench.checks import at_most
from bench.orchestrator import store_environment
from bench.serving import (
    recommend_call,
    setup_world,
    start_stack,
    stop_stack,
    wait_healthy,
    world_settings,
)
from contract.keys import Keys
from contract.redis_clients import sync_client
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from orchestrator_client import connection_pool
from search.client import build_client
from search.port import SearchEngine
from training.publish import VectorSet, publish
from training.registry import register_type

RATE = 50.0  # requests/s to serving, paced
STEADY_SECONDS = 8.0  # each quiet block
# Three: the median of two is their mean, and one quiet block's p99 (6.9 against 8.4 ms in a run of 12-05)
# decided the verdict alone.
ROUNDS = 3
BUILD_TYPE, BUILD_ITEMS, BUILD_DIM = "bench-rollout", 30_000, 64
# The throttled side: one bulk request in flight, a cap on documents per second, a CPU budget on the node.
THROTTLE = {"LOCKSTEP_INDEXER_BULK_WORKERS": "1", "LOCKSTEP_INDEXER_CPU_BUDGET_PERCENT": "30"}
THROTTLE_BATCH = 500  # items per fetch and bulk request (--batch-size; 500 by default)
SIDES: dict[str, tuple[dict[str, str], int]] = {  # name -> (environment of the build, batch size)
    "unthrottled": ({}, 500),
    "throttled": (THROTTLE, THROTTLE_BATCH),
}
TARGET = 2.0  # throttled rollout p99 / steady p99
PLOT = Path("out/rollout/p99-over-time.png")
PLOT_WINDOW = 2.0  # seconds of requests per plotted p99


class Load:
    """A paced open-loop load on serving: (due time, latency) of every answered request."""

    def __init__(self, urls: list[str], key: str) -> None:
        self.urls = urls
        self.key = key
        self.samples: list[tuple[float, float]] = []
        self.errors = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        headers = {"Authorization": f"Bearer {self.key}"}
        async with aiohttp.ClientSession(headers=headers, connector=connection_pool(100)) as session:
            call = recommend_call(session, self.urls)
            pending: set[asyncio.Task[None]] = set()
            start, n = loop.time(), 0
            while not self._stop.is_set():
                due = start + n / RATE
                await asyncio.sleep(max(0.0, due - loop.time()))  # pacing the load, not synchronising
                task = asyncio.create_task(self._one(call, n, due))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
            await asyncio.gather(*pending)

    async def _one(self, call: Any, n: int, due: float) -> None:
        try:
            await call(n)
        except aiohttp.ClientError:
            self.errors += 1
            return
        now = asyncio.get_running_loop().time()
        self.samples.append((due, now - due))

    def stop(self) -> None:
        self._stop.set()

    def p99_ms(self, windows: list[tuple[float, float]]) -> float:
        """p99 of the requests due within any of `windows` (loop times)."""
        chosen = [latency for due, latency in self.samples if any(a <= due < b for a, b in windows)]
        return round(float(np.percentile(np.array(chosen) * 1000, 99)), 2) if chosen else float("nan")

    def count(self, began: float, ended: float) -> int:
        return sum(1 for due, _ in self.samples if began <= due < ended)


class CpuSampler:
    """The busiest OpenSearch node's CPU use (node stats), read every second: (loop time, percent)."""

    def __init__(self, search: SearchEngine) -> None:
        self.search = search
        self.samples: list[tuple[float, int]] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.samples.append((loop.time(), await self.search.node_cpu_percent()))
            await asyncio.sleep(1.0)  # a sampling period, not synchronisation

    async def stop(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self.search.aclose()

    def median(self, windows: list[tuple[float, float]]) -> float:
        """Median CPU percent of the readings taken within any of `windows` (loop times)."""
        chosen = [cpu for at, cpu in self.samples if any(a <= at < b for a, b in windows)]
        return float(np.median(chosen)) if chosen else float("nan")


def _publish(settings: Settings, keys: Keys, etype: EmbeddingType, number: int) -> None:
    """Version `number` of the build type: fresh random item vectors (and a few users)."""
    rng = np.random.default_rng(number)
    client = cast(redis.Redis, sync_client(settings))
    start = datetime(2021, 1, 1, tzinfo=UTC) + timedelta(days=31 * number)
    publish(
        client,
        keys,
        etype,
        Frame(start, start + timedelta(days=30)),
        users=VectorSet(("u0",), rng.standard_normal((1, BUILD_DIM)).astype(np.float32)),
        items=VectorSet(
            tuple(str(i) for i in range(BUILD_ITEMS)),
            rng.standard_normal((BUILD_ITEMS, BUILD_DIM)).astype(np.float32),
        ),
    )
    client.close()


async def _quiet(loop: asyncio.AbstractEventLoop) -> tuple[float, float]:
    """A block of STEADY_SECONDS with nothing but the load: its window."""
    began = loop.time()
    await asyncio.sleep(STEADY_SECONDS)
    return began, loop.time()


async def _build(env: dict[str, str], batch: int) -> tuple[dict[str, Any], float, float]:
    """One build in its own process: its timings, and when it started and ended (loop time), start-up
    left out."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.rollout_build",
        BUILD_TYPE,
        str(BUILD_ITEMS),
        str(batch),
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    ready = await process.stdout.readline()
    loop = asyncio.get_running_loop()
    began = loop.time()
    process.stdin.write(b"go\n")
    await process.stdin.drain()
    out = await process.stdout.read()
    await process.wait()
    ended = loop.time()
    if ready != b"ready\n" or process.returncode != 0:
        raise RuntimeError(f"bench.rollout_build exited with {process.returncode}")
    return cast(dict[str, Any], orjson.loads(out.splitlines()[-1])), began, ended


async def _measure(settings: Settings, urls: list[str], keys: Keys, etype: EmbeddingType) -> dict[str, Any]:
    env = {
        **os.environ,
        **store_environment(settings),
        "LOCKSTEP_ORCHESTRATOR_URL": settings.orchestrator_url,
        "LOCKSTEP_RECALL_FLOOR": "0",  # random vectors: the build is timed, its recall only reported
    }
    load = Load(urls, settings.reader_key.get_secret_value())
    running = asyncio.create_task(load.run())
    loop = asyncio.get_running_loop()
    rounds: list[dict[str, Any]] = []
    builds: list[tuple[str, float, float]] = []
    version = 0
    cpu = CpuSampler(build_client(settings))
    sampling = asyncio.create_task(cpu.run())
    try:
        await asyncio.sleep(2.0)  # warm-up, not measured
        for _ in range(ROUNDS):
            quiet = [await _quiet(loop)]
            figures: dict[str, Any] = {}
            for side, (extra, batch) in SIDES.items():
                version += 1
                await asyncio.to_thread(_publish, settings, keys, etype, version)
                built, began, ended = await _build({**env, **extra}, batch)
                builds.append((side, began, ended))
                figures[side] = {
                    "p99_ms": load.p99_ms([(began, ended)]),
                    "requests": load.count(began, ended),
                    "build_seconds": round(ended - began, 1),
                    "node_cpu_percent_median": cpu.median([(began, ended)]),
                    "build": built,
                }
                quiet.append(await _quiet(loop))
            figures["steady_p99_ms"] = load.p99_ms(quiet)
            figures["steady_node_cpu_percent_median"] = cpu.median(quiet)
            for side in SIDES:
                figures[side]["p99_vs_steady"] = round(figures[side]["p99_ms"] / figures["steady_p99_ms"], 3)
            rounds.append(figures)
            print(orjson.dumps(figures).decode(), flush=True)
    finally:
        load.stop()
        await running
        await cpu.stop(sampling)
    _plot(load.samples, builds)
    return {
        "rounds": rounds,
        "errors": load.errors,
        **{
            f"{side}_p99_vs_steady_median": round(
                float(np.median([r[side]["p99_vs_steady"] for r in rounds])), 3
            )
            for side in SIDES
        },
    }


def _plot(samples: list[tuple[float, float]], builds: list[tuple[str, float, float]]) -> None:
    """p99 per PLOT_WINDOW seconds of due times over the run, each build's span shaded by its side."""
    if not samples:
        return
    first = min(due for due, _ in samples)
    windows: dict[int, list[float]] = {}
    for due, latency in samples:
        windows.setdefault(int((due - first) // PLOT_WINDOW), []).append(latency * 1000)
    starts = sorted(windows)
    figure, axes = plt.subplots(figsize=(10, 4))
    p99s = [float(np.percentile(windows[w], 99)) for w in starts]
    axes.plot([w * PLOT_WINDOW for w in starts], p99s, color="black")
    colours = {"unthrottled": "tab:red", "throttled": "tab:green"}
    labelled: set[str] = set()
    for side, began, ended in builds:
        label = None if side in labelled else side
        labelled.add(side)
        axes.axvspan(began - first, ended - first, alpha=0.2, color=colours.get(side, "grey"), label=label)
    axes.set_xlabel("seconds into the run")
    axes.set_ylabel(f"serving p99 per {PLOT_WINDOW:g} s (ms)")
    axes.set_title(f"p99 during rollouts ({RATE:g} requests/s; shaded: a shadow build)")
    axes.legend()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(PLOT, dpi=100, bbox_inches="tight")
    plt.close(figure)


def run(settings: Settings) -> dict[str, Any]:
    """Start the serving world and a second type to roll out; measure; clean up."""
    settings = world_settings(settings)
    keys = Keys(settings.key_prefix)
    _etype, loc = setup_world(settings, keys)
    build_type = EmbeddingType(
        name=BUILD_TYPE, family=Family.DIRECT_DIRECT, dim=BUILD_DIM, similarity=Similarity.COSINE
    )
    client = cast(redis.Redis, sync_client(settings))
    register_type(client, keys, build_type)
    client.close()
    processes: list[subprocess.Popen[bytes]] = []
    began = time.perf_counter()
    try:
        urls = start_stack(settings, loc, processes)
        for url in urls:
            wait_healthy(url)
        figures = asyncio.run(_measure(settings, urls, keys, build_type))
    finally:
        stop_stack(settings, loc, processes)
        _drop_build_indices(settings)
    return {
        "benchmark": "rollout",
        "rate_rps": RATE,
        "build": {"items": BUILD_ITEMS, "dim": BUILD_DIM},
        "throttle": THROTTLE,
        "seconds": round(time.perf_counter() - began, 1),
        "load_average": os.getloadavg(),
        **figures,
        "checks": [
            at_most("throttled rollout p99 vs steady p99", figures["throttled_p99_vs_steady_median"], TARGET),
        ],
    }


def _drop_build_indices(settings: Settings) -> None:
    search = OpenSearch(hosts=settings.opensearch_hosts, timeout=60)
    search.indices.delete(index=f"{settings.index_prefix}-*", ignore_unavailable=True)
    search.close()
