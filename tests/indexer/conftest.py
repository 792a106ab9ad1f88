"""Indexer test fixtures: a real orchestrator (uvicorn in a thread), versions published to Redis, runners."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
import redis
import uvicorn
from catalog_loading import load_goodbooks
from indexer_support import CATALOG_SIZE, USERS, MovableClock, RunnerFactory

from contract.keys import Keys, Kind
from contract.settings import IndexerSettings, Settings
from contract.types import EmbeddingType
from contract.vectors import bucket_of
from contract.versions import Frame
from examples.goodbooks.loader import goodbooks_items
from indexer.catalog import Item
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner
from orchestrator.main import create_app
from training.publish import VectorSet, publish
from training.registry import register_type


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def anyio_backend() -> str:
    """The indexer runs on asyncio."""
    return "asyncio"


@pytest.fixture
def orch_settings(settings: Settings) -> Settings:
    """The test's settings with an orchestrator URL of its own and fast polling.

    The grace period is far longer than any test: only moving the runner's clock ends it.
    """
    return settings.model_copy(
        update={
            "orchestrator_url": f"http://127.0.0.1:{_free_port()}",
            "orchestrator_poll_seconds": 0.2,
            "slot_grace_seconds": 600.0,
            "indexer_lock_seconds": 3.0,
        }
    )


@pytest.fixture
def orchestrator(
    orch_settings: Settings, redis_client: redis.Redis, opensearch_client: object
) -> Iterator[Settings]:
    """A running orchestrator for this test's prefix; yields the settings that point at it."""
    port = int(orch_settings.orchestrator_url.rsplit(":", 1)[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(orch_settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{orch_settings.orchestrator_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("orchestrator did not start")
        time.sleep(0.05)
    yield orch_settings
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def clock() -> MovableClock:
    """The runners' clock: the test moves it past a grace period."""
    return MovableClock()


@pytest.fixture
async def make_runner(clock: MovableClock) -> AsyncIterator[RunnerFactory]:
    """Runners on the test's clock (batches of 100), over a catalog of the first 300 goodbooks books (loaded
    into the store of a key prefix on its first runner); closed afterwards."""
    made: list[Runner] = []
    loaded: set[str] = set()

    def make(settings: IndexerSettings) -> Runner:
        if settings.key_prefix not in loaded:
            load_goodbooks(settings, CATALOG_SIZE)
            loaded.add(settings.key_prefix)
        runner = Runner(settings, IndexerMetrics.create(), batch_size=100, clock=clock)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        await runner.aclose()


@pytest.fixture(scope="session")
def small_catalog() -> list[Item]:
    """The first 300 goodbooks items."""
    return [Item.from_document(doc) for doc in goodbooks_items(Settings().data_dir, CATALOG_SIZE)]


Publisher = Callable[..., str]


@pytest.fixture
def publish_version(redis_client: redis.Redis, keys: Keys, small_catalog: list[Item]) -> Publisher:
    """Publish version number `n` of a type (random vectors; a few cold items have none); returns its id."""

    def _publish(etype: EmbeddingType, n: int, cold: int = 5, bad_item: str | None = None) -> str:
        register_type(redis_client, keys, etype)
        rng = np.random.default_rng(1000 * n + etype.dim)
        ids = tuple(i.item_id for i in small_catalog[cold:])
        items = rng.normal(size=(len(ids), etype.dim)).astype(np.float32)
        users = rng.normal(size=(USERS, etype.dim)).astype(np.float32)
        start = datetime(2017, 1, 1, tzinfo=UTC) + timedelta(days=n)
        frame = Frame(start, start + timedelta(days=30))
        manifest = publish(
            redis_client,
            keys,
            etype,
            frame,
            users=VectorSet(tuple(f"u{j}" for j in range(USERS)), users),
            items=VectorSet(ids, items),
        ).manifest
        if bad_item is not None:
            # A zero vector slipped in after publishing (corruption): Lucene refuses it for cosine.
            bucket = bucket_of(bad_item, manifest.buckets.item)
            redis_client.hset(
                keys.vectors(etype.name, frame.version_id, Kind.ITEM, bucket),
                bad_item,
                b"\x00" * 4 * etype.dim,
            )
        return frame.version_id

    return _publish
