"""The serving benchmark's floor: a bare ASGI app that makes serving's two calls and nothing else.

POST /v1/recommend {"user_id"} fetches the user's vector through the typed orchestrator client and sends
serving's k-NN query (serving's candidates and ef_search) through the search port, both built as serving
builds them, and returns the hit ids: no validation, type resolution, caches, fallback, metrics or response
model. Serving minus this floor is what serving's own code costs; this floor minus the raw script is what
any HTTP service in front of the same two calls costs on this box.
"""

from __future__ import annotations

import os

import orjson
from starlette.types import Receive, Scope, Send

from contract.indexing import IndexedLocation
from contract.settings import Settings
from contract.types import Similarity
from orchestrator_client import OrchestratorClient
from search.client import build_client
from search.requests import VersionedKnnQuery, candidates
from serving.knn import ef_search

K = 10


class FloorApp:
    """The two calls behind one route; /healthz for the benchmark's readiness wait."""

    def __init__(self, settings: Settings, type_name: str, similarity: Similarity, loc: IndexedLocation):
        self.orchestrator = OrchestratorClient(
            settings.orchestrator_url,
            settings.reader_key.get_secret_value(),
            timeout=settings.serving_orchestrator_timeout_seconds,
        )
        self.search = build_client(
            settings, timeout=settings.serving_opensearch_timeout_seconds, pool_size=64
        )
        self.type_name = type_name
        self.similarity = similarity
        self.loc = loc
        self.beam = candidates(K), ef_search(settings, K)

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
        user = await self.orchestrator.user_vector(self.type_name, orjson.loads(body)["user_id"])
        query = VersionedKnnQuery(
            location=self.loc,
            similarity=self.similarity,
            vector=user.vector,
            k=K,
            candidates=self.beam[0],
            ef_search=self.beam[1],
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
    similarity = Similarity(os.environ["BENCH_FLOOR_SIMILARITY"])
    return FloorApp(Settings(), os.environ["BENCH_FLOOR_TYPE"], similarity, loc)
