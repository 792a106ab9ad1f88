"""Serving in front of a scale index (part of `make bench-scale`): POST /v1/recommend through a serving
process against the raw k-NN query serving sends, on the same index with the same parameters.

Serving fetches the user's vector from the orchestrator, then queries; the raw side sends the same query
(serving.knn.knn_query, as serving builds it for this type) for the same user's vector straight to
OpenSearch with aiohttp. ROUNDS interleaved rounds of REQUESTS per side at one connection; the target
(TARGET_P50, the issue's) is on the median of the rounds' p50 ratios.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import numpy as np
import orjson

from bench.serving import CLI, JSON_TYPE, SEARCH_HEADERS, _environment, _port, interleaved, wait_healthy
from contract.indexing import IndexedLocation
from contract.settings import Settings
from contract.types import EmbeddingType
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
    port = settings.serving_url.rsplit(":", 1)[1]
    process = await asyncio.create_subprocess_exec(*CLI, "serving", "serve", "--port", port, env=env)
    try:
        await asyncio.to_thread(wait_healthy, settings.serving_url)
        bodies = [orjson.dumps(knn_body(_query(settings, etype, location, u))) for u in users]
        search_url = f"{settings.opensearch_endpoint}/{location.index}/_search?filter_path={HITS_ONLY}"
        reader = {"Authorization": f"Bearer {settings.reader_key.get_secret_value()}"}
        async with (
            aiohttp.ClientSession(headers=reader) as serving,
            aiohttp.ClientSession() as search,
        ):

            async def served(n: int) -> list[str]:
                body = {"user_id": f"u{n % len(users)}", "embedding_type": etype.name, "k": K}
                body["exclude_seen"] = False
                async with serving.post(
                    settings.serving_url + "/v1/recommend", data=orjson.dumps(body), headers=JSON_TYPE
                ) as response:
                    response.raise_for_status()
                    answer = orjson.loads(await response.read())
                    if answer["degraded"]:
                        raise RuntimeError(f"serving answered degraded: {answer['degraded_reason']}")
                    return [item["item_id"] for item in answer["items"]]

            async def raw(n: int) -> list[str]:
                data = bodies[n % len(users)]
                async with search.post(search_url, data=data, headers=SEARCH_HEADERS) as response:
                    response.raise_for_status()
                    return [hit["_id"] for hit in orjson.loads(await response.read())["hits"]["hits"]]

            for n in range(len(users)):  # both sides do the same work: the same answer
                if await served(n) != await raw(n):
                    raise RuntimeError(f"serving and the raw query disagree for user u{n}")
            figures, rounds = await interleaved({"raw": raw, "serving": served}, 1, {"serving": process.pid})
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)
    ratios = [s["p50_ms"] / r["p50_ms"] for r, s in zip(rounds["raw"], rounds["serving"], strict=True)]
    return {
        **figures,
        "p50_ratio_per_round": [round(x, 3) for x in ratios],
        "p50_ratio": round(float(np.median(ratios)), 3),
        "rounds": rounds,
    }


def _query(
    settings: Settings, etype: EmbeddingType, location: IndexedLocation, user: np.ndarray
) -> VersionedKnnQuery:
    """What serving sends for this user: unfiltered, nothing excluded."""
    return knn_query(settings, location, etype, user.tolist(), K, filters=None, exclude=frozenset())
