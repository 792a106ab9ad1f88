"""Orchestrator overhead: GET users/{id} and items:batch against minimal endpoints doing the raw Redis read.

Both servers run under uvicorn with the same flags, in their own processes, in the same run, over the
same data; requests alternate between them in blocks so machine noise hits both alike.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import httpx
import numpy as np
import orjson
import redis
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis

from bench.checks import at_least, at_most
from contract import routes
from contract.keys import Keys, Kind
from contract.manifest import Buckets, Counts, Manifest
from contract.redis_clients import async_client, sync_client
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.vectors import bucket_of, buckets_for, by_bucket, encode
from contract.versions import Frame

DIM = 64
USERS = 1_000
ITEMS = 1_000
TYPE = "bench-als-d64"
LATENCY_REQUESTS = 3_000  # per server, sequential, alternating request by request
BATCH_REQUESTS = 60  # per server
THROUGHPUT_SECONDS = 3.0
THROUGHPUT_CLIENTS = 8
TARGET_USER_P50 = 1.2  # GET users/{id} p50, at most, vs the raw read
TARGET_BATCH_SPEED = 0.8  # items:batch speed, at least, vs the raw read
JSON = {"Content-Type": "application/json"}


def baseline_app(settings: Settings) -> FastAPI:
    """The floor: one raw HGET, or one round trip of HMGETs (one per bucket); no auth, versions or checks."""
    keys = Keys(settings.key_prefix)
    client = cast(Redis, async_client(settings, timeout=settings.request_timeout_seconds))
    version = os.environ["LOCKSTEP_BENCH_VERSION"]
    user_buckets, item_buckets = buckets_for(USERS), buckets_for(ITEMS)
    user_keys = [keys.vectors(TYPE, version, Kind.USER, b) for b in range(user_buckets)]
    item_keys = [keys.vectors(TYPE, version, Kind.ITEM, b) for b in range(item_buckets)]
    app = FastAPI()

    @app.get("/raw/users/{user_id}")
    async def user(user_id: str) -> Response:
        raw = await client.hget(user_keys[bucket_of(user_id, user_buckets)], user_id)
        vector = np.frombuffer(raw, dtype="<f4").tolist()  # type: ignore[arg-type]
        body = {"type_name": TYPE, "version": version, "dim": DIM, "vector": vector, "source": "direct"}
        return Response(orjson.dumps(body), media_type="application/json")

    @app.post("/raw/items")
    async def items(request: Request) -> Response:
        ids = orjson.loads(await request.body())["item_ids"]
        groups = by_bucket(ids, item_buckets)
        pipe = client.pipeline(transaction=False)
        for bucket, members in groups.items():
            pipe.hmget(item_keys[bucket], members)
        replies = await pipe.execute()
        rows = {
            i: r
            for members, raw in zip(groups.values(), replies, strict=True)
            for i, r in zip(members, raw, strict=True)
        }
        found = [i for i in ids if rows[i] is not None]
        payload = b"".join(rows[i] for i in found)
        body = {"ids": found, "vectors": base64.b64encode(payload).decode("ascii"), "dim": DIM}
        return Response(orjson.dumps(body), media_type="application/json")

    return app


def baseline_app_from_env() -> FastAPI:
    """uvicorn factory for the baseline process."""
    return baseline_app(Settings())


def seed(settings: Settings) -> str:
    client = cast(redis.Redis, sync_client(settings))
    keys = Keys(settings.key_prefix)
    etype = EmbeddingType(name=TYPE, family=Family.DIRECT_DIRECT, dim=DIM, similarity=Similarity.DOT)
    client.hset(keys.types(), TYPE, etype.model_dump_json())
    frame = Frame.parse("2017-01-01..2017-07-01")
    version = frame.version_id
    rng = np.random.default_rng(0)
    for kind, count, prefix in ((Kind.USER, USERS, "u"), (Kind.ITEM, ITEMS, "")):
        matrix = rng.standard_normal((count, DIM)).astype(np.float32)
        rows = {f"{prefix}{i}": encode(matrix[i]) for i in range(count)}
        for bucket, ids in by_bucket(rows, buckets_for(count)).items():
            client.hset(keys.vectors(TYPE, version, kind, bucket), mapping={i: rows[i] for i in ids})
    manifest = Manifest(
        type_name=TYPE,
        version=version,
        seq=1,
        frame_start=frame.start,
        frame_end=frame.end,
        dim=DIM,
        counts=Counts(user=USERS, item=ITEMS),
        buckets=Buckets.for_counts(Counts(user=USERS, item=ITEMS)),
        checksum="bench",
        created_at=frame.end,
    )
    with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.manifest(TYPE, version), manifest.model_dump_json())
        pipe.zadd(keys.published(TYPE), {version: 1})
        pipe.set(keys.in_use(TYPE), version)
        pipe.execute()
    client.close()
    return version


def cleanup(settings: Settings) -> None:
    client = sync_client(settings)
    # SCAN, not KEYS: a Redis Cluster client sends SCAN to every primary and KEYS to one node only.
    names = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
    for start in range(0, len(names), 1000):
        client.delete(*names[start : start + 1000])
    client.close()


def store_environment(settings: Settings) -> dict[str, str]:
    """The LOCKSTEP_* variables that point a spawned process at the stores and prefixes of `settings`.

    Every store variable is set, so a variable of the calling shell (the cluster tier's, say) cannot point
    a benchmark's process at another topology than the one `settings` names.
    """
    login = {}
    if settings.redis_username is not None:
        login["LOCKSTEP_REDIS_USERNAME"] = settings.redis_username
    if settings.redis_password is not None:
        login["LOCKSTEP_REDIS_PASSWORD"] = settings.redis_password.get_secret_value()
    return login | {
        "LOCKSTEP_KEY_PREFIX": settings.key_prefix,
        "LOCKSTEP_INDEX_PREFIX": settings.index_prefix,
        "LOCKSTEP_OPENSEARCH_URL": ",".join(settings.opensearch_hosts),
        "LOCKSTEP_REDIS_URL": settings.redis_endpoint,
        "LOCKSTEP_REDIS_TOPOLOGY": settings.redis_topology,
        "LOCKSTEP_REDIS_CLUSTER_NODES": json.dumps(settings.redis_cluster_nodes),
        "LOCKSTEP_LOG_LEVEL": "warning",
        "LOCKSTEP_DEVELOPMENT": "1" if settings.development else "0",  # the dev-* keys it calls with
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(factory: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    command += ["--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)


def serve_orchestrator(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    """The orchestrator under uvicorn, on the stores of `settings`, on a free port: its process and URL."""
    port = _free_port()
    server = _serve("orchestrator.main:app_from_env", port, {**os.environ, **store_environment(settings)})
    return server, f"http://127.0.0.1:{port}"


def reader_calls(
    settings: Settings, url: str, version: str
) -> tuple[httpx.Client, Callable[[int], None], Callable[[int], None]]:
    """A reader's client of the orchestrator at `url`, and its two timed calls: GET user n, items:batch.

    Each call checks its answer, so a figure is never the speed of an error.
    """
    key = settings.reader_keys[0].get_secret_value()
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    batch_body = orjson.dumps({"version": version, "item_ids": [str(i) for i in range(ITEMS)]})

    def user(n: int) -> None:
        response = client.get(routes.user_vector_path(TYPE, f"u{n % USERS}"))
        assert response.status_code == 200, response.text

    def batch(_n: int) -> None:
        response = client.post(routes.items_batch_path(TYPE), content=batch_body, headers=JSON)
        assert response.status_code == 200 and len(response.json()["ids"]) == ITEMS

    return client, user, batch


def _wait(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def alternating_latencies(
    calls: dict[str, Callable[[int], None]], requests: int, block: int = 1
) -> dict[str, list[float]]:
    """Sequential requests, alternating blocks between the servers."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for start in range(0, requests, block):
        for name, call in calls.items():
            for n in range(start, min(requests, start + block)):
                began = time.perf_counter()
                call(n)
                samples[name].append(time.perf_counter() - began)
    return samples


def throughput(call: Callable[[int], None]) -> float:
    """Requests per second with THROUGHPUT_CLIENTS concurrent sequential clients."""
    deadline = time.perf_counter() + THROUGHPUT_SECONDS

    def worker(offset: int) -> int:
        done = 0
        while time.perf_counter() < deadline:
            call(offset + done)
            done += 1
        return done

    with ThreadPoolExecutor(THROUGHPUT_CLIENTS) as pool:
        total = sum(pool.map(worker, range(0, THROUGHPUT_CLIENTS * 100_000, 100_000)))
    return total / THROUGHPUT_SECONDS


def latency_summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(_percentile(samples, 0.99) * 1000, 3),
    }


def run(settings: Settings) -> dict[str, Any]:
    """Run both servers, measure, and report the orchestrator against the raw baseline."""
    version = seed(settings)
    env = {**os.environ, **store_environment(settings), "LOCKSTEP_BENCH_VERSION": version}
    raw_port = _free_port()
    ours_server, ours_url = serve_orchestrator(settings)
    servers = [ours_server, _serve("bench.orchestrator:baseline_app_from_env", raw_port, env)]
    try:
        raw_url = f"http://127.0.0.1:{raw_port}"
        _wait(ours_url + routes.HEALTHZ)
        _wait(f"{raw_url}/raw/users/u0")
        ours, ours_user, ours_batch = reader_calls(settings, ours_url, version)
        raw = httpx.Client(base_url=raw_url, timeout=10)

        def raw_user(n: int) -> None:
            response = raw.get(f"/raw/users/u{n % USERS}")
            assert response.status_code == 200, response.text

        raw_body = orjson.dumps({"item_ids": [str(i) for i in range(ITEMS)]})

        def raw_batch(_n: int) -> None:
            response = raw.post("/raw/items", content=raw_body, headers=JSON)
            assert response.status_code == 200 and len(response.json()["ids"]) == ITEMS

        # Warm both (connections, caches, first-request costs) before measuring.
        alternating_latencies({"ours": ours_user, "raw": raw_user}, 200)
        alternating_latencies({"ours": ours_batch, "raw": raw_batch}, 10, block=5)

        users = alternating_latencies({"ours": ours_user, "raw": raw_user}, LATENCY_REQUESTS)
        batches = alternating_latencies({"ours": ours_batch, "raw": raw_batch}, BATCH_REQUESTS, block=10)
        user_rps = {"ours": throughput(ours_user), "raw": throughput(raw_user)}
        batch_rps = {"ours": throughput(ours_batch), "raw": throughput(raw_batch)}
        ours.close()
        raw.close()
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)
        cleanup(settings)

    user_ratio = statistics.median(users["ours"]) / statistics.median(users["raw"])
    batch_ratio = statistics.median(batches["raw"]) / statistics.median(batches["ours"])
    return {
        "users_get": {
            "orchestrator": {**latency_summary(users["ours"]), "rps": round(user_rps["ours"], 1)},
            "raw_hget": {**latency_summary(users["raw"]), "rps": round(user_rps["raw"], 1)},
            "p50_ratio_orchestrator_over_raw": round(user_ratio, 3),
        },
        "items_batch_1000": {
            "orchestrator": {**latency_summary(batches["ours"]), "rps": round(batch_rps["ours"], 1)},
            "raw_hmget": {**latency_summary(batches["raw"]), "rps": round(batch_rps["raw"], 1)},
            "speed_ratio_orchestrator_vs_raw": round(batch_ratio, 3),
            "throughput_ratio_orchestrator_vs_raw": round(batch_rps["ours"] / batch_rps["raw"], 3),
        },
        "checks": [
            at_most("GET users/{id} p50 vs raw read", round(user_ratio, 3), TARGET_USER_P50),
            at_least("items:batch speed vs raw read", round(batch_ratio, 3), TARGET_BATCH_SPEED),
        ],
    }
