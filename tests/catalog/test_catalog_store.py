"""The catalog store on the real Redis: items and change events written together, the schema record kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from catalog.changes import ChangeKind, decode
from catalog.store import CatalogStore, SchemaChanged
from contract.items import load_schema
from contract.keys import Keys
from contract.redis_clients import AsyncRedis, async_client
from contract.replication import Replication
from contract.settings import Settings

pytestmark = pytest.mark.anyio

NEWS = load_schema(Path(__file__).resolve().parents[2] / "examples" / "news" / "schema.yaml")


def _article(n: int, **change: object) -> dict:
    doc = {
        "item_id": f"n{n}",
        "title": f"Article {n}",
        "publisher": "Daily",
        "region": "eu" if n % 2 else "us",
        "category": "weather",
        "topics": ["rain"],
        "published_at": "2026-12-03T09:00:00Z",
        "views": n,
        "quality": 0.25,
        "paywalled": False,
    }
    return NEWS.validate_item({**doc, **change})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncRedis]:
    redis = async_client(settings)
    yield redis
    await redis.aclose()


@pytest.fixture
def store(client: AsyncRedis, keys: Keys, settings: Settings) -> CatalogStore:
    return CatalogStore(client, keys, NEWS, Replication.of(settings))


async def _events(client: AsyncRedis, keys: Keys) -> list:
    return [decode(entry_id, fields) for entry_id, fields in await client.xrange(keys.catalog_changes())]


async def test_put_get_and_read_all_with_one_event_per_write(
    store: CatalogStore, client: AsyncRedis, keys: Keys
):
    docs = [_article(n) for n in range(1, 1201)]  # more than one script's batch
    assert await store.put(docs) == 1200
    found = await store.get(["n7", "n9999"])
    assert found == {"n7": docs[6]}
    everything = [doc async for batch in store.items() for doc in batch]
    assert sorted(d["item_id"] for d in everything) == sorted(d["item_id"] for d in docs)
    assert {d["item_id"]: d for d in everything}["n1200"] == docs[-1]
    events = await _events(client, keys)
    assert len(events) == 1200 and all(e.kind is ChangeKind.UPSERT for e in events)
    assert events[6].doc == docs[6]  # the event carries the item as stored
    stats = await store.stats()
    assert stats.items == 1200 and stats.stream_length == 1200
    assert stats.schema is not None and stats.schema["fingerprint"] == NEWS.fingerprint()


async def test_put_replaces_the_whole_item(store: CatalogStore):
    await store.put([_article(1, word_count=300)])
    await store.put([_article(1, title="Second")])
    (stored,) = (await store.get(["n1"])).values()
    assert stored["title"] == "Second" and "word_count" not in stored


async def test_patch_changes_named_fields_and_its_event_carries_the_whole_item(
    store: CatalogStore, client: AsyncRedis, keys: Keys
):
    await store.put([_article(1, word_count=300)])
    patched = await store.patch("n1", {"views": 99, "word_count": None, "topics": ["snow", "ice"]})
    assert patched is not None
    assert patched["views"] == 99 and "word_count" not in patched and patched["topics"] == ["snow", "ice"]
    assert patched["title"] == "Article 1" and patched["item_id"] == "n1"
    assert (await store.get(["n1"]))["n1"] == patched
    last = (await _events(client, keys))[-1]
    assert last.kind is ChangeKind.UPSERT and last.doc == patched
    assert await store.patch("n404", {"views": 1}) is None  # no item, no event
    assert len(await _events(client, keys)) == 2


async def test_delete_counts_only_items_that_existed(store: CatalogStore, client: AsyncRedis, keys: Keys):
    await store.put([_article(n) for n in range(1, 4)])
    assert await store.delete(["n1", "n2", "n404", "n1"]) == 2
    assert set(await store.ids()) == {"n3"}
    events = await _events(client, keys)
    assert [(e.kind, e.item_id) for e in events[3:]] == [(ChangeKind.DELETE, "n1"), (ChangeKind.DELETE, "n2")]


async def test_floats_and_unicode_survive_exactly(store: CatalogStore):
    doc = _article(1, quality=0.1 + 0.2, title='Ünïcödé — 東京 "quoted"')
    await store.put([doc])
    await store.patch("n1", {"quality": 1 / 3})
    stored = (await store.get(["n1"]))["n1"]
    assert stored["quality"] == 1 / 3 and stored["title"] == doc["title"]


async def test_another_schema_is_refused_before_anything_is_written(
    client: AsyncRedis, keys: Keys, settings: Settings, store: CatalogStore
):
    await store.put([_article(1)])
    changed = NEWS.model_copy(update={"fields": {k: v for k, v in NEWS.fields.items() if k != "word_count"}})
    other = CatalogStore(client, keys, changed, Replication.of(settings))
    for attempt in (
        other.check_schema(),
        other.put([_article(2)]),
        other.patch("n1", {"views": 5}),
        other.delete(["n1"]),
    ):
        with pytest.raises(SchemaChanged, match=r"removed \['word_count'\]") as refused:
            await attempt
        assert "new key and index prefix" in str(refused.value)
    assert set(await store.ids()) == {"n1"} and (await store.get(["n1"]))["n1"]["views"] == 1
    assert (await store.stats()).stream_length == 1


async def test_concurrent_patches_of_one_item_each_land(store: CatalogStore):
    """Each patch is one script: none is lost to another writer between its read and its write."""
    await store.put([_article(1)])
    fields = ["views", "word_count", "quality", "paywalled", "category", "publisher"]
    values: dict[str, object] = {
        "views": 5,
        "word_count": 10,
        "quality": 0.75,
        "paywalled": True,
        "category": "sport",
        "publisher": "Weekly",
    }
    await asyncio.gather(*(store.patch("n1", {name: values[name]}) for name in fields))
    stored = (await store.get(["n1"]))["n1"]
    assert {name: stored[name] for name in fields} == values
