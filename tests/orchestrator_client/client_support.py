"""Client test helpers: a type published as producers do, the real orchestrator app on a port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import redis
import uvicorn

from contract.indexing import IndexedLocation, Mode
from contract.keys import Keys
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from orchestrator.main import create_app
from orchestrator_client import OrchestratorClient
from training.publish import VectorSet, publish
from training.registry import register_type

DIM = 8
ITEMS = 1_500  # more than one items:batch
USERS = 5

Connect = Callable[[Settings, str], AbstractAsyncContextManager[OrchestratorClient]]


def frame(month: int) -> Frame:
    """A one-month 2017 frame; later months make later versions."""
    return Frame(datetime(2017, month, 1, tzinfo=UTC), datetime(2017, month + 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Published:
    """A direct type with two published versions: users u0.., items 0.. (the second has no item 0)."""

    etype: EmbeddingType
    versions: tuple[str, str]
    users: dict[str, np.ndarray]
    items: dict[str, np.ndarray]


def _set(rows: dict[str, np.ndarray]) -> VectorSet:
    return VectorSet(tuple(rows), np.stack(list(rows.values())))


def publish_type(client: redis.Redis, keys: Keys) -> Published:
    """Register a type and publish two versions through training.publish."""
    etype = EmbeddingType(name="als-d8", family=Family.DIRECT_DIRECT, dim=DIM, similarity=Similarity.DOT)
    register_type(client, keys, etype)
    rng = np.random.default_rng(3)
    users = {f"u{i}": rng.standard_normal(DIM).astype(np.float32) for i in range(USERS)}
    items = {str(i): rng.standard_normal(DIM).astype(np.float32) for i in range(ITEMS)}
    first = publish(client, keys, etype, frame(1), users=_set(users), items=_set(items))
    later = {k: v for k, v in items.items() if k != "0"}
    second = publish(client, keys, etype, frame(2), users=_set(users), items=_set(later))
    return Published(etype, (first.manifest.version, second.manifest.version), users, items)


def location(version: str) -> IndexedLocation:
    """An indexed record of `version`."""
    return IndexedLocation(
        version=version,
        mode=Mode.SHADOW,
        index=f"idx-{version.lower()}",
        vector_field="emb",
        version_field="emb_version",
        indexed_at=datetime.now(UTC),
        item_count=ITEMS,
    )


@asynccontextmanager
async def connect(settings: Settings, key: str) -> AsyncIterator[OrchestratorClient]:
    """A client of the real orchestrator app, served by uvicorn on a free port in this event loop."""
    app = create_app(settings.model_copy(update={"orchestrator_poll_seconds": 0.05}))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # a condition wait: uvicorn sets it once the socket listens
            if serving.done():
                serving.result()
                raise RuntimeError(f"orchestrator on port {port} did not start")
            await asyncio.sleep(0.01)
        async with OrchestratorClient(f"http://127.0.0.1:{port}", key, timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await serving
