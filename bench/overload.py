"""Overload: /v1/recommend at 64 connections against serving with and without its in-flight bound.

Two serving processes run side by side in the same run against the same orchestrator and index: `bounded`
with `serving_max_in_flight` BOUND (about the cores it gets; the default, 32, only stops unbounded
queues), `unbounded` with the bound out of reach (what serving did before load shedding: every request
queues behind the event loop). Each round measures both at 1 connection, then at 64, in rotating order. A
shed request (503 Overloaded) is retried by its worker after the Retry-After it was given, as an HTTP
client's retry policy does (urllib3's Retry, for one), so the 64 connections keep pressing without
spinning. Targets (issue: load shedding): at 64 connections the p99 of admitted requests stays <= 3x the
1-connection p99 of the same process and run (the median over rounds), and shed requests are answered in
< 10 ms (p99), as a quiet client in a process of its own (bench.shed_probe) sees them while the crowd
presses: the crowd's own client, 64 coroutines on one event loop, counts its scheduling delays into what
it measures.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import aiohttp
import numpy as np
import orjson

from bench.checks import at_most
from bench.serving import (
    JSON_TYPE,
    TYPE,
    USERS,
    _environment,
    _port,
    setup_world,
    start_stack,
    stop_stack,
    wait_healthy,
    world_settings,
)
from contract.keys import Keys
from contract.settings import Settings
from orchestrator_client import connection_pool

ROUNDS = 5
CONNECTIONS = 64
SINGLE_REQUESTS, CROWD_REQUESTS = 200, 1_000  # per side and round: answered requests, shed ones not counted
BOUND = 2  # the bounded side's serving_max_in_flight (measured: 2 gave 1.59-2.63x, 3 2.41-3.53x, 8 4.07x)
PROBE_SECONDS = 4.0  # the probe's time beside the crowd (a crowd block lasts longer)
TARGETS = {"admitted_p99_vs_c1": 3.0, "shed_p99_ms": 10.0}


async def _block(
    session: aiohttp.ClientSession, url: str, connections: int, requests: int
) -> tuple[list[float], list[float]]:
    """Until `requests` are answered 200 over `connections` workers: admitted and shed latencies (s)."""
    admitted: list[float] = []
    shed: list[float] = []
    counter = iter(range(requests * 1000))

    async def worker() -> None:
        for n in counter:
            if len(admitted) >= requests:
                return
            body = {"user_id": f"u{n % USERS}", "embedding_type": TYPE, "k": 10, "exclude_seen": False}
            started = time.perf_counter()
            async with session.post(url + "/v1/recommend", data=orjson.dumps(body), headers=JSON_TYPE) as r:
                await r.read()
                took = time.perf_counter() - started
                if r.status == 503 and r.headers.get("Retry-After"):
                    shed.append(took)
                    await asyncio.sleep(float(r.headers["Retry-After"]))
                    continue
                if r.status != 200:
                    raise RuntimeError(f"{url}: {r.status} {await r.text()}")
                admitted.append(took)

    await asyncio.gather(*(worker() for _ in range(connections)))
    return admitted, shed


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values) * 1000, q)), 3) if values else 0.0


async def _measure(settings: Settings, urls: dict[str, str]) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
    key = settings.reader_keys[0].get_secret_value()
    reader = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(
        connector=connection_pool(CONNECTIONS * len(urls)), headers=reader
    ) as session:
        for url in urls.values():  # warm-up
            await _block(session, url, 8, 100)
        names = list(urls)
        for number in range(ROUNDS):
            for name in names[number % 2 :] + names[: number % 2]:
                single, _ = await _block(session, urls[name], 1, SINGLE_REQUESTS)
                probe = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.shed_probe",
                    urls[name],
                    key,
                    str(PROBE_SECONDS),
                    stdout=asyncio.subprocess.PIPE,
                )
                started = time.perf_counter()
                admitted, shed = await _block(session, urls[name], CONNECTIONS, CROWD_REQUESTS)
                took = time.perf_counter() - started
                probed, _ = await probe.communicate()
                probe_shed = [ms / 1000 for status, ms in json.loads(probed) if status == 503]
                rounds[name].append(
                    {
                        "c1_p99_ms": _ms(single, 99),
                        "c64_admitted_p50_ms": _ms(admitted, 50),
                        "c64_admitted_p99_ms": _ms(admitted, 99),
                        "c64_admitted_max_ms": _ms(admitted, 100),
                        "c64_shed": len(shed),
                        "c64_shed_p50_ms": _ms(shed, 50),
                        "c64_shed_p99_ms": _ms(shed, 99),
                        "probe_shed": len(probe_shed),
                        "probe_shed_p50_ms": _ms(probe_shed, 50),
                        "probe_shed_p99_ms": _ms(probe_shed, 99),
                        "c64_answered_rps": round(len(admitted) / took, 1),
                    }
                )
    summary: dict[str, Any] = {}
    for name, per_round in rounds.items():
        summary[name] = {
            key: round(float(np.median([r[key] for r in per_round])), 3) for key in per_round[0]
        } | {
            "admitted_p99_vs_c1": round(
                float(np.median([r["c64_admitted_p99_ms"] / r["c1_p99_ms"] for r in per_round])), 3
            ),
            "rounds": per_round,
        }
    return summary


def run(settings: Settings) -> dict[str, Any]:
    """A 5k-item world, the orchestrator, a bounded and an unbounded serving process; both measured."""
    settings = world_settings(settings)
    etype, loc = setup_world(settings, Keys(settings.key_prefix))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        bound = {"LOCKSTEP_SERVING_MAX_IN_FLIGHT": str(BOUND)}
        [bounded] = start_stack(settings, loc, processes, serving_env=bound)
        unbounded_port = _port()
        env = {**_environment(settings), "LOCKSTEP_SERVING_MAX_IN_FLIGHT": "10000"}
        cli = [sys.executable, "-c", "from cli.main import app; app()"]
        processes.append(subprocess.Popen([*cli, "serving", "serve", "--port", str(unbounded_port)], env=env))
        unbounded = f"http://127.0.0.1:{unbounded_port}"
        wait_healthy(bounded)
        wait_healthy(unbounded)
        figures = asyncio.run(_measure(settings, {"bounded": bounded, "unbounded": unbounded}))
    finally:
        stop_stack(settings, loc, processes)
    checks = [
        at_most(
            "c64 admitted p99 vs c1 p99",
            figures["bounded"]["admitted_p99_vs_c1"],
            TARGETS["admitted_p99_vs_c1"],
        ),
        at_most(
            "shed p99 (quiet probe)", figures["bounded"]["probe_shed_p99_ms"], TARGETS["shed_p99_ms"], " ms"
        ),
    ]
    return {
        "benchmark": "overload",
        "type": etype.name,
        "connections": CONNECTIONS,
        "rounds": ROUNDS,
        "serving_max_in_flight": BOUND,
        "load_average": os.getloadavg(),
        "targets": TARGETS,
        **figures,
        "checks": checks,
    }


if __name__ == "__main__":
    print(orjson.dumps(run(Settings(development=True)), option=orjson.OPT_INDENT_2).decode())
