"""The news example end to end on the real stack: its schema makes the template, its catalog is loaded through
the CLI, both indexer modes build it, serving (a process) answers with filters on every field kind and by
partition, and items deleted or edited through the orchestrator's API leave or change the answers."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from contract.filters import matches, parse_filter
from contract.items import load_schema, using_schema
from contract.keys import Keys
from contract.redis_clients import login_options
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner
from training.publish import publish
from training.registry import register_type
from training.vector_files import read_vectors

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "examples" / "news" / "schema.yaml"
NEWS = load_schema(SCHEMA_FILE)
LOCKSTEP = str(Path(sys.executable).with_name("lockstep"))
ITEMS, USERS, DIM = 2000, 40, 16
SHADOW = EmbeddingType(name="news-shadow", family=Family.DIRECT_DIRECT, dim=DIM, similarity=Similarity.DOT)
LIVE = EmbeddingType(name="news-live", family=Family.DIRECT_DIRECT, dim=DIM, similarity=Similarity.DOT)
READER = {"Authorization": "Bearer dev-reader-1"}
WRITER = {"Authorization": "Bearer dev-catalog-1"}

# One filter per field kind (and the operators that apply to it).
FILTERS = {
    "keyword": {"op": "in", "field": "category", "values": ["politics", "sport", "business"]},
    "keywords": {"op": "exists", "field": "topics"},
    "integer": {"op": "range", "field": "views", "gte": 1},
    "float": {"op": "range", "field": "quality", "gte": 0.3, "lt": 0.9},
    "boolean": {"op": "in", "field": "paywalled", "values": [False]},
    "date": {"op": "range", "field": "published_at", "gte": "2026-11-10", "lt": "2026-11-28T12:00:00+00:00"},
    "not": {"op": "not", "child": {"op": "in", "field": "region", "values": ["us"]}},
}


@dataclass(frozen=True)
class Deployed:
    settings: Settings
    serving_url: str
    orchestrator_url: str
    docs: dict[str, dict[str, Any]]  # the catalog as loaded, by id
    users: list[str]


def _free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSTEP_")}
    for name in (
        "opensearch_url",
        "redis_url",
        "key_prefix",
        "index_prefix",
        "orchestrator_url",
        "serving_url",
    ):
        value = getattr(settings, name)
        if value is not None:
            env[f"LOCKSTEP_{name.upper()}"] = str(value)
    env["LOCKSTEP_OPENSEARCH_PORT"] = str(settings.opensearch_port)
    env["LOCKSTEP_REDIS_PORT"] = str(settings.redis_port)
    if settings.redis_username is not None:
        env["LOCKSTEP_REDIS_USERNAME"] = settings.redis_username
    if settings.redis_password is not None:
        env["LOCKSTEP_REDIS_PASSWORD"] = settings.redis_password.get_secret_value()
    env |= {
        "LOCKSTEP_DEVELOPMENT": "1",
        "LOCKSTEP_CATALOG_SCHEMA": str(SCHEMA_FILE),
        "LOCKSTEP_ORCHESTRATOR_POLL_SECONDS": "0.2",
        "LOCKSTEP_SERVING_RESULT_CACHE_SECONDS": "0",
    }
    return env


@contextmanager
def _process(settings: Settings, component: str, url: str) -> Iterator[None]:
    process = subprocess.Popen(
        [LOCKSTEP, component, "serve", "--port", url.rsplit(":", 1)[1]],
        env=_environment(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:  # another process: there is no event to wait on
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, f"{component} exited with {process.returncode}"
            assert time.monotonic() < deadline, f"{component} did not answer on {url}"
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _cli(settings: Settings, *args: str) -> None:
    done = subprocess.run(
        [LOCKSTEP, *args], env=_environment(settings), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def deployed(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """The news catalog synthesised, loaded, published for two types, indexed in both modes, served."""
    token = f"news{os.getpid()}{int(time.time()) % 100000}"
    settings = stack_settings.model_copy(
        update={
            "key_prefix": token,
            "index_prefix": token,
            "orchestrator_url": _free_url(),
            "serving_url": _free_url(),
            "catalog_schema": SCHEMA_FILE,
        }
    )
    out = tmp_path_factory.mktemp("news")
    _cli(
        settings,
        "catalog",
        "synth",
        "--items",
        str(ITEMS),
        "--users",
        str(USERS),
        "--dim",
        str(DIM),
        "--out",
        str(out),
    )
    _cli(settings, "catalog", "load", str(out / "items.jsonl"))
    client = redis.Redis.from_url(settings.redis_endpoint, **login_options(settings))
    keys = Keys(settings.key_prefix)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    users, items = read_vectors(out / "v0" / "users.npz"), read_vectors(out / "v0" / "items.npz")
    for etype in (SHADOW, LIVE):
        register_type(client, keys, etype)
        publish(client, keys, etype, Frame(start, start + timedelta(days=30)), users=users, items=items)
    try:
        with using_schema(NEWS), _process(settings, "orchestrator", settings.orchestrator_url):
            docs = asyncio.run(_index(settings))
            with _process(settings, "serving", settings.serving_url):
                yield Deployed(
                    settings, settings.serving_url, settings.orchestrator_url, docs, list(users.ids)
                )
    finally:
        for key in client.scan_iter(match=f"{token}:*", count=1000):
            client.delete(key)
        client.close()
        httpx.delete(f"{settings.opensearch_endpoint}/{token}-*", timeout=60)


async def _index(settings: Settings) -> dict[str, dict[str, Any]]:
    """A shadow build of one type and the live index of the other; the catalog as the store holds it."""
    runner = Runner(settings, IndexerMetrics.create(), batch_size=500)
    try:
        async with asyncio.timeout(60):
            while True:  # the orchestrator lists new types after its next poll: another process, no event
                if {i.type.name for i in await runner.orchestrator.list_types()} >= {SHADOW.name, LIVE.name}:
                    break
                await asyncio.sleep(0.1)
        (shadow,) = (await runner.shadow([SHADOW.name])).results
        assert shadow.promoted, shadow
        (live,) = (await runner.incremental([LIVE.name])).results
        assert live.types[0].promoted, live
        return {doc["item_id"]: doc async for batch in runner.store.items() for doc in batch}
    finally:
        await runner.aclose()


def _recommend(deployed: Deployed, etype: EmbeddingType, **body: Any) -> dict[str, Any]:
    answer = httpx.post(
        f"{deployed.serving_url}/v1/recommend",
        json={"embedding_type": etype.name, "k": 20, **body},
        headers=READER,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    # The invariant: every embedding score of one response is of the response's version.
    assert all(i["version"] == result["version"] for i in result["items"] if i["scorer"] == "embedding")
    return result


@pytest.mark.parametrize("etype", [SHADOW, LIVE], ids=["shadow", "incremental"])
@pytest.mark.parametrize("kind", list(FILTERS))
def test_filters_on_every_field_kind(deployed: Deployed, etype: EmbeddingType, kind: str) -> None:
    tree = parse_filter(FILTERS[kind])
    for user in deployed.users[:3]:
        items = _recommend(deployed, etype, user_id=user, filters=FILTERS[kind])["items"]
        assert len(items) == 20 and all(i["scorer"] == "embedding" for i in items)
        for item in items:
            stored = deployed.docs[item["item_id"]]
            assert matches(tree, stored), (kind, stored)
            # The served fields are the schema's, as stored.
            assert {name: item.get(name) for name in NEWS.fields} == {n: stored.get(n) for n in NEWS.fields}


def test_a_request_names_partitions_and_is_answered_from_them_only(deployed: Deployed) -> None:
    regions: dict[str, int] = {}
    for doc in deployed.docs.values():
        regions[doc["region"]] = regions.get(doc["region"], 0) + 1
    small, large = sorted(regions, key=regions.__getitem__)[0], max(regions, key=regions.__getitem__)
    for etype in (SHADOW, LIVE):
        for partitions in ([large], [small], [small, large]):
            items = _recommend(deployed, etype, user_id=deployed.users[1], partitions=partitions)["items"]
            assert len(items) == min(20, sum(regions[p] for p in partitions))
            assert {deployed.docs[i["item_id"]]["region"] for i in items} <= set(partitions)
        scoped = _recommend(
            deployed, etype, user_id=deployed.users[1], partitions=[large], filters=FILTERS["boolean"]
        )
        assert all(deployed.docs[i["item_id"]]["region"] == large for i in scoped["items"])
        assert all(deployed.docs[i["item_id"]]["paywalled"] is False for i in scoped["items"])
        seed = next(iter(deployed.docs))
        similar = httpx.get(
            f"{deployed.serving_url}/v1/items/{seed}/similar",
            params={"embedding_type": etype.name, "partitions": [small], "k": 5},
            headers=READER,
            timeout=30,
        )
        assert similar.status_code == 200, similar.text
        assert {deployed.docs[i["item_id"]]["region"] for i in similar.json()["items"]} <= {small}
    for bad in ([], ["x" * 300], [5]):
        refused = httpx.post(
            f"{deployed.serving_url}/v1/recommend",
            json={"user_id": deployed.users[0], "partitions": bad},
            headers=READER,
            timeout=30,
        )
        assert refused.status_code == 422 and "partitions" in refused.json()["detail"], refused.text


def test_items_deleted_or_edited_through_the_api_leave_or_change_the_answers(deployed: Deployed) -> None:
    user, orchestrator = deployed.users[2], deployed.orchestrator_url
    top = [i["item_id"] for i in _recommend(deployed, LIVE, user_id=user)["items"]]
    gone, moved = top[0], top[1]
    assert httpx.delete(f"{orchestrator}/v1/items/{gone}", headers=WRITER, timeout=30).status_code == 200
    patched = httpx.patch(
        f"{orchestrator}/v1/items/{moved}", json={"region": "zz"}, headers=WRITER, timeout=30
    )
    assert patched.status_code == 200 and patched.json()["region"] == "zz"
    refused = httpx.put(
        f"{orchestrator}/v1/items/{moved}",
        json={**deployed.docs[moved], "published_at": "last tuesday"},
        headers=WRITER,
        timeout=30,
    )
    assert refused.status_code == 422 and refused.json()["detail"].startswith("published_at:")

    asyncio.run(_one_incremental_cycle(deployed.settings))
    after = [i["item_id"] for i in _recommend(deployed, LIVE, user_id=user)["items"]]
    assert gone not in after and moved in after  # an edit keeps its vector
    scoped = _recommend(deployed, LIVE, user_id=user, partitions=["zz"])["items"]
    assert [i["item_id"] for i in scoped] == [moved] and scoped[0]["region"] == "zz"


async def _one_incremental_cycle(settings: Settings) -> None:
    runner = Runner(settings, IndexerMetrics.create(), batch_size=500)
    try:
        (cycle,) = (await runner.incremental([LIVE.name])).results
        assert cycle.changes == 2 and cycle.deleted == 1
    finally:
        await runner.aclose()
