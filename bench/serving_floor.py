"""The serving benchmarks' floor: a bare ASGI app that makes serving's two calls and nothing else.

POST /v1/recommend {"user_id"} fetches the user's vector through the typed orchestrator client and sends
serving's k-NN query for the type (serving.knn.knn_query: the type's candidates, ef_search and
rescoring) through the search port, both built as serving builds them, and returns the hit ids: no
validation, type resolution, caches, fallback, metrics or response model. Serving minus this floor is
what serving's own code costs; this floor minus the raw script is what any HTTP service in front of the
same two calls costs on this box.
"""

from __future__ import annotations

import os
import sys

import orjson
from starlette.types import Receive, Scope, Send

from contract.indexing import IndexedLocation
from contract.settings import Settings
from contract.types import EmbeddingType
from orchestrator_client import OrchestratorClient
from search.client import build_client
from serving.knn import knn_query

K = 10


class FloorApp:
    """The two calls behind one route; /healthz for the benchmark's readiness wait."""

    def __init__(self, settings: Settings, etype: EmbeddingType, loc: IndexedLocation):
        self.orchestrator = OrchestratorClient(
            settings.orchestrator_url,
            settings.reader_key.get_secret_value(),
            timeout=settings.serving_orchestrator_timeout_seconds,
        )
        self.search = build_client(
            settings, timeout=settings.serving_opensearch_timeout_seconds, pool_size=64
        )
        self.settings = settings
        self.etype = etype
        self.loc = loc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                if (await receive())["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.orchestrator.aclose()
                    await self.search.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/healthz":
            await _answer(send, b"{}")
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        user = await self.orchestrator.user_vector(self.etype.name, orjson.loads(body)["user_id"])
        query = knn_query(
            self.settings, self.loc, self.etype, user.vector, K, filters=None, exclude=frozenset()
        )
        hits = await self.search.knn(query)
        await _answer(send, orjson.dumps({"items": [hit.item_id for hit in hits]}))


async def _answer(send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def floor_app_from_env() -> FloorApp:
    """uvicorn factory: settings from LOCKSTEP_*, the bench type and its location from BENCH_FLOOR_*."""
    loc = IndexedLocation.model_validate_json(os.environ["BENCH_FLOOR_LOCATION"])
    etype = EmbeddingType.model_validate_json(os.environ["BENCH_FLOOR_TYPE"])
    return FloorApp(Settings(), etype, loc)


def floor_command(port: int) -> list[str]:
    """The floor under uvicorn on loopback `port`."""
    app = "bench.serving_floor:floor_app_from_env"
    flags = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return [sys.executable, "-m", "uvicorn", "--factory", app, *flags]


def floor_environment(base: dict[str, str], etype: EmbeddingType, loc: IndexedLocation) -> dict[str, str]:
    """`base` (the stack's environment) and the type and location the floor queries."""
    return {
        **base,
        "BENCH_FLOOR_LOCATION": loc.model_dump_json(),
        "BENCH_FLOOR_TYPE": etype.model_dump_json(),
    }
