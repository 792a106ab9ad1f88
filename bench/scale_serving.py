"""Serving in front of a scale index (part of `make bench-scale`): POST /v1/recommend through a serving
process against the raw k-NN query serving sends, on the same index with the same parameters.

Serving fetches the user's vector from the orchestrator, then queries; the raw side sends the same query
(serving.knn.knn_query, as serving builds it for this type) for the same user's vector straight to
OpenSearch with aiohttp. A third side, `serving_warm`, is a serving process whose user-vector cache holds
every user (a returning user within LOCKSTEP_SERVING_USER_CACHE_SECONDS): the same query with no
orchestrator call, so it shows what serving adds around the query itself. A fourth, `floor`
(bench.serving_floor), is a bare ASGI app making serving's two calls (the user's vector from the
orchestrator, then the same query) and nothing else: what any HTTP service in front of the orchestrator
and OpenSearch costs on this box, before serving's own code. Interleaved rounds at one connection; the
target (TARGET_P50, the issue's) is on the median of the rounds' p50 ratios of the cold side, caches off;
the warm side's and the floor's ratios are reported beside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
import orjson

from bench.serving import CLI, JSON_TYPE, SEARCH_HEADERS, _environment, _port, interleaved, wait_healthy
from bench.serving_floor import floor_command, floor_environment
from contract.indexing import IndexedLocation
from contract.settings import Settings
from contract.types import EmbeddingType
from orchestrator_client import connection_pool
from search.opensearch import HITS_ONLY
from search.requests import VersionedKnnQuery, knn_body
from serving.knn import knn_query

TARGET_P50 = 1.3
K = 10


async def served_vs_raw(
    settings: Settings, etype: EmbeddingType, location: IndexedLocation, users: np.ndarray, schema: str
) -> dict[str, Any]:
    """Serving (a process of its own, the type in use at `location`) against raw k-NN, for users u0..u{n}."""
    settings = settings.model_copy(update={"serving_url": f"http://127.0.0.1:{_port()}"})
    env = {**_environment(settings), "LOCKSTEP_CATALOG_SCHEMA": schema}
    urls = {"serving": settings.serving_url, "serving_warm": f"http://127.0.0.1:{_port()}"}
    # The result cache stays off on both: every request runs the k-NN query.
    envs = {"serving": env, "serving_warm": {**env, "LOCKSTEP_SERVING_USER_CACHE_SECONDS": "3600"}}
    processes = {
        name: await asyncio.create_subprocess_exec(
            *CLI, "serving", "serve", "--port", url.rsplit(":", 1)[1], env=envs[name]
        )
        for name, url in urls.items()
    }
    floor_port = _port()
    floor_url = f"http://127.0.0.1:{floor_port}"
    processes["floor"] = await asyncio.create_subprocess_exec(
        *floor_command(floor_port), env=floor_environment(env, etype, location)
    )
    try:
        for url in [*urls.values(), floor_url]:
            await asyncio.to_thread(wait_healthy, url)
        bodies = [orjson.dumps(knn_body(_query(settings, etype, location, u))) for u in users]
        search_url = f"{settings.opensearch_endpoint}/{location.index}/_search?filter_path={HITS_ONLY}"
        reader = {"Authorization": f"Bearer {settings.reader_key.get_secret_value()}"}
        async with (
            aiohttp.ClientSession(headers=reader, connector=connection_pool(100)) as serving,
            aiohttp.ClientSession(connector=connection_pool(100)) as search,
        ):

            def served(url: str) -> Callable[[int], Awaitable[list[str]]]:
                async def call(n: int) -> list[str]:
                    body = {"user_id": f"u{n % len(users)}", "embedding_type": etype.name, "k": K}
                    body["exclude_seen"] = False
                    async with serving.post(
                        url + "/v1/recommend", data=orjson.dumps(body), headers=JSON_TYPE
                    ) as response:
                        response.raise_for_status()
                        answer = orjson.loads(await response.read())
                        if answer["degraded"]:
                            raise RuntimeError(f"serving answered degraded: {answer['degraded_reason']}")
                        return [item["item_id"] for item in answer["items"]]

                return call

            async def floor(n: int) -> list[str]:
                body = {"user_id": f"u{n % len(users)}"}
                async with serving.post(
                    floor_url + "/v1/recommend", data=orjson.dumps(body), headers=JSON_TYPE
                ) as response:
                    response.raise_for_status()
                    ids: list[str] = orjson.loads(await response.read())["items"]
                    return ids

            async def raw(n: int) -> list[str]:
                data = bodies[n % len(users)]
                async with search.post(search_url, data=data, headers=SEARCH_HEADERS) as response:
                    response.raise_for_status()
                    return [hit["_id"] for hit in orjson.loads(await response.read())["hits"]["hits"]]

            sides = {"raw": raw, "floor": floor, **{name: served(url) for name, url in urls.items()}}
            # Every side does the same work, the same answer; this pass also fills the warm side's cache.
            for n in range(len(users)):
                answers = [await side(n) for side in sides.values()]
                if any(answer != answers[0] for answer in answers):
                    raise RuntimeError(f"serving and the raw query disagree for user u{n}")
            pids = {name: process.pid for name, process in processes.items()}
            figures, rounds = await interleaved(sides, 1, pids)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            await asyncio.wait_for(process.wait(), 20)
    ratios = {
        name: [s["p50_ms"] / r["p50_ms"] for r, s in zip(rounds["raw"], rounds[name], strict=True)]
        for name in [*urls, "floor"]
    }
    return {
        **figures,
        "p50_ratio_per_round": [round(x, 3) for x in ratios["serving"]],
        "p50_ratio": round(float(np.median(ratios["serving"])), 3),
        "p50_ratio_warm": round(float(np.median(ratios["serving_warm"])), 3),
        "p50_ratio_floor": round(float(np.median(ratios["floor"])), 3),
        "rounds": rounds,
    }


def _query(
    settings: Settings, etype: EmbeddingType, location: IndexedLocation, user: np.ndarray
) -> VersionedKnnQuery:
    """What serving sends for this user: unfiltered, nothing excluded."""
    return knn_query(settings, location, etype, user.tolist(), K, filters=None, exclude=frozenset())
