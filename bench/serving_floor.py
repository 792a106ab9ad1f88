"""The serving benchmark's floor: a bare ASGI app that makes serving's two calls and nothing else.

POST /v1/recommend {"user_id"} fetches the user's vector from the orchestrator, sends the k-NN body serving
would send (search.requests.knn_body, serving's candidates and ef_search) over the same keep-alive client,
and returns OpenSearch's hits as they came: no validation, type resolution, caches, fallback, metrics or
response model. Serving minus this floor is what serving's own code costs; this floor minus the raw script
is what any HTTP service in front of the same two calls costs on this box.
"""

from __future__ import annotations

import os

import orjson
from starlette.types import Receive, Scope, Send

from contract.indexing import IndexedLocation
from contract.settings import Settings
from contract.types import Similarity
from search.keepalive import KeepAlivePool
from search.opensearch import HITS_ONLY
from search.requests import VersionedKnnQuery, knn_body
from serving.knn import candidates, ef_search

K = 10


class FloorApp:
    """The two calls behind one route; /healthz for the benchmark's readiness wait."""

    def __init__(self, settings: Settings, type_name: str, similarity: Similarity, loc: IndexedLocation):
        reader = {"Authorization": f"Bearer {settings.reader_key.get_secret_value()}"}
        self.orchestrator = KeepAlivePool(settings.orchestrator_url, 30, reader)
        self.search = KeepAlivePool(settings.opensearch_endpoint, 30, {"Accept-Encoding": "identity"})
        self.user_path = f"/v1/embedding-types/{type_name}/users/"
        self.search_path = f"/{loc.index}/_search?filter_path={HITS_ONLY}"
        self.similarity = similarity
        self.loc = loc
        self.beam = candidates(K), ef_search(settings, K)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                if (await receive())["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
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
        user_id = orjson.loads(body)["user_id"]
        reply = await self.orchestrator.request("GET", self.user_path + user_id)
        vector = orjson.loads(reply.content)["vector"]
        query = VersionedKnnQuery(
            location=self.loc,
            similarity=self.similarity,
            vector=vector,
            k=K,
            candidates=self.beam[0],
            ef_search=self.beam[1],
        )
        reply = await self.search.request("POST", self.search_path, orjson.dumps(knn_body(query)))
        await _answer(send, reply.content)


async def _answer(send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def floor_app_from_env() -> FloorApp:
    """uvicorn factory: settings from LOCKSTEP_*, the bench type and its location from BENCH_FLOOR_*."""
    loc = IndexedLocation.model_validate_json(os.environ["BENCH_FLOOR_LOCATION"])
    similarity = Similarity(os.environ["BENCH_FLOOR_SIMILARITY"])
    return FloorApp(Settings(), os.environ["BENCH_FLOOR_TYPE"], similarity, loc)
