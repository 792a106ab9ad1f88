"""Serving test helpers: a synthetic catalog published, indexed and registered; real servers in threads."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import numpy as np
import redis
import uvicorn
from fastapi import FastAPI
from opensearchpy import OpenSearch

from contract import routes
from contract.indexing import (
    IndexedLocation,
    Mode,
    Slot,
    live_index,
    shadow_index,
    vector_field,
    version_field,
)
from contract.keys import Keys
from contract.profiles import Interaction, Profile
from contract.settings import Settings
from contract.types import EmbeddingType, Family, IndexParams, Similarity
from contract.versions import Frame
from search.client import build_client
from search.port import SearchEngine
from search.requests import ItemDocument, SlotVector, index_action
from search.templates import install_items_template, vector_slot_mappings
from service.server import ServerConfig
from training.profiles import write_profiles
from training.publish import VectorSet, publish
from training.registry import register_type

DIM = 8
N_ITEMS = 200
N_USERS = 30
TYPE_A = "als-d8"
TYPE_B = "bpr-d8"
LANGS = ("eng", "fre", "ger")


def frame(month: int) -> Frame:
    """A one-month 2017 frame; later months make later versions."""
    return Frame(datetime(2017, month, 1, tzinfo=UTC), datetime(2017, month + 1, 1, tzinfo=UTC))


def item_id(i: int) -> str:
    """Catalog ids look like goodbooks book ids."""
    return str(1000 + i)


def metadata(i: int) -> dict[str, Any]:
    """Deterministic, filterable metadata for item i."""
    return {
        "title": f"Book {i}",
        "authors": [f"author{i % 7}"],
        "year": 1990 + i % 30,
        "language": LANGS[i % 3],
        "average_rating": round(3.0 + (i % 20) / 10, 2),
        "ratings_count": (i * 37) % 1000,
        "tags": ["fantasy"] if i % 4 == 0 else ["classics", "romance"],
    }


@dataclass
class Version:
    """A published version: its id and vectors."""

    name: str
    users: dict[str, np.ndarray]
    items: dict[str, np.ndarray]


@dataclass
class World:
    """Everything a serving test needs: types, versions, the index, locations, profiles."""

    settings: Settings
    etype: EmbeddingType
    versions: list[Version]
    index: str
    locations: dict[str, IndexedLocation]
    profiles: dict[str, list[str]] = field(default_factory=dict)

    def version(self, name: str) -> Version:
        """The version called `name`."""
        return next(v for v in self.versions if v.name == name)


def _vectors(rng: np.random.Generator, ids: list[str]) -> dict[str, np.ndarray]:
    return {i: rng.normal(size=DIM).astype(np.float32) for i in ids}


T = TypeVar("T")


def _on_search(settings: Settings, work: Callable[[SearchEngine], Awaitable[T]]) -> T:
    """Run `work` on a search engine of its own (the world is built outside any event loop)."""

    async def run() -> T:
        search = build_client(settings, timeout=60)
        try:
            return await work(search)
        finally:
            await search.aclose()

    return asyncio.run(run())


def build_world(
    settings: Settings,
    redis_client: redis.Redis,
    opensearch_client: OpenSearch,
    *,
    type_name: str = TYPE_A,
    seed: int = 1,
    mode: Mode = Mode.INCREMENTAL,
    index: IndexParams | None = None,
) -> World:
    """Publish two versions (V1: items 0..149 have vectors, V2: 0..179), index them, write profiles.

    Incremental mode: one live index, V1 in slot A and V2 in slot B. Shadow mode: an index per version.
    """
    keys = Keys(settings.key_prefix)
    rng = np.random.default_rng(seed)
    etype = EmbeddingType(
        name=type_name,
        family=Family.DIRECT_DIRECT,
        dim=DIM,
        similarity=Similarity.DOT,
        index=index or IndexParams(),
    )
    register_type(redis_client, keys, etype)
    users = [f"u{j}" for j in range(N_USERS)]
    versions = []
    for month, covered in ((1, 150), (2, 180)):
        user_vecs = _vectors(rng, users)
        item_vecs = _vectors(rng, [item_id(i) for i in range(covered)])
        result = publish(
            redis_client,
            keys,
            etype,
            frame(month),
            users=VectorSet(tuple(user_vecs), np.stack(list(user_vecs.values()))),
            items=VectorSet(tuple(item_vecs), np.stack(list(item_vecs.values()))),
        )
        versions.append(Version(result.manifest.version, user_vecs, item_vecs))
    _on_search(settings, lambda search: install_items_template(search, settings))
    locations: dict[str, IndexedLocation] = {}
    now = datetime.now(UTC)
    if mode is Mode.INCREMENTAL:
        index = live_index(settings.index_prefix)
        props = vector_slot_mappings(etype, settings)
        _on_search(settings, lambda search: search.create_index(index, props, settings.hnsw_ef_search))
        actions = []
        for i in range(N_ITEMS):
            slots = tuple(
                SlotVector.of(type_name, slot, v.name, v.items[item_id(i)].tolist())
                for slot, v in zip((Slot.A, Slot.B), versions, strict=True)
                if item_id(i) in v.items
            )
            actions.append(index_action(index, ItemDocument(item_id(i), metadata(i), slots)))
        report = _on_search(settings, lambda search: search.bulk_write(actions, refresh=True))
        assert report.ok, report.failed
        for slot, v in zip((Slot.A, Slot.B), versions, strict=True):
            locations[v.name] = IndexedLocation(
                version=v.name,
                mode=mode,
                index=index,
                vector_field=vector_field(type_name, slot),
                version_field=version_field(type_name, slot),
                indexed_at=now,
                item_count=N_ITEMS,
            )
    else:
        index = ""
        ef = settings.hnsw_ef_search
        for v in versions:
            name = shadow_index(settings.index_prefix, type_name, v.name)
            props = vector_slot_mappings(etype, settings, (Slot.A,))
            _on_search(settings, lambda search, n=name, p=props: search.create_index(n, p, ef))
            actions = []
            for i in range(N_ITEMS):
                slots = ()
                if item_id(i) in v.items:
                    slots = (SlotVector.of(type_name, Slot.A, v.name, v.items[item_id(i)].tolist()),)
                actions.append(index_action(name, ItemDocument(item_id(i), metadata(i), slots)))
            report = _on_search(settings, lambda search, a=actions: search.bulk_write(a, refresh=True))
            assert report.ok, report.failed
            locations[v.name] = IndexedLocation(
                version=v.name,
                mode=mode,
                index=name,
                vector_field=vector_field(type_name, Slot.A),
                version_field=version_field(type_name, Slot.A),
                indexed_at=now,
                item_count=N_ITEMS,
            )
            index = name
    world = World(settings, etype, versions, index, locations)
    profiles = []
    for j, user in enumerate(users):
        seen = [item_id((j * 5 + s) % 150) for s in range(5)]
        world.profiles[user] = seen
        profiles.append(
            Profile(user_id=user, interactions=tuple(Interaction(item_id=s, weight=1.0) for s in seen))
        )
    write_profiles(redis_client, keys, profiles)
    return world


def register(orchestrator_url: str, settings: Settings, world: World, in_use: str) -> None:
    """What the indexer does: record every location, then move in_use (compare-and-set)."""
    headers = {"Authorization": f"Bearer {settings.indexer_key.get_secret_value()}"}
    with httpx.Client(base_url=orchestrator_url, headers=headers, timeout=10) as client:
        for loc in world.locations.values():
            response = client.put(
                routes.indexed_path(world.etype.name, loc.version), json=loc.model_dump(mode="json")
            )
            assert response.status_code == 204, response.text
        set_in_use(client, world.etype.name, in_use)


def set_in_use(client: httpx.Client, type_name: str, version: str) -> None:
    """Compare-and-set in_use to `version` from whatever it is."""
    current = client.get(routes.type_path(type_name)).json()["in_use"]
    if current == version:
        return
    response = client.put(
        routes.in_use_path(type_name), json={"expected": current, "version": version, "reason": "test"}
    )
    assert response.status_code in (200, 204), response.text


def exact_top(
    world: World, version: str, user: str, k: int, exclude: set[str], allowed: Any = None
) -> list[str]:
    """The model's exact top-k for a user under version (DOT), excluding ids, optionally filtered."""
    v = world.version(version)
    q = v.users[user]
    scored = []
    for i in range(N_ITEMS):
        iid = item_id(i)
        if iid in exclude or iid not in v.items:
            continue
        if allowed is not None and not allowed(metadata(i)):
            continue
        scored.append((float(np.dot(q, v.items[iid])), iid))
    scored.sort(reverse=True)
    return [iid for _, iid in scored[:k]]


# --- real servers in threads -----------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A uvicorn server on a thread, on a fixed port, that can be stopped and started again."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        config = ServerConfig(
            self.app, read_timeout=10.0, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop and wait for the thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
        self._server = None
        self._thread = None


class Proxy:
    """A TCP forwarder we can cut (connection refused) or slow down: a real network failure."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.delay = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.up()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: bool) -> None:
        try:
            while data := await reader.read(65536):
                if delayed and self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False))
        self._writers.difference_update({writer, up_writer})

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    def up(self) -> None:
        """Accept and forward connections."""
        self._run(self._start())

    def down(self) -> None:
        """Refuse new connections and cut open ones."""
        self._run(self._stop())

    def close(self) -> None:
        """Stop for good."""
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


@contextlib.contextmanager
def running(app: FastAPI, port: int | None = None) -> Iterator[Server]:
    """A server for the duration of the block."""
    server = Server(app, port or free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
