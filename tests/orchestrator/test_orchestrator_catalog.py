"""The catalog API: items checked against the item schema and written with their change event."""

from __future__ import annotations

import pytest
import redis
from orchestrator_support import AppFactory, auth

from catalog.changes import ChangeKind, decode
from contract import routes
from contract.items import schema
from contract.keys import Keys
from contract.settings import Settings

pytestmark = pytest.mark.anyio

BOOK = {
    "title": "A Book",
    "authors": ["Someone", "Another"],
    "year": 2001,
    "language": "en",
    "average_rating": 4.25,
    "ratings_count": 1200,
    "tags": ["fantasy"],
}


def _events(client: redis.Redis, keys: Keys) -> list:
    return [decode(entry_id, fields) for entry_id, fields in client.xrange(keys.catalog_changes())]


async def test_put_get_patch_delete(
    app_client: AppFactory, orch_settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    writer, reader = auth(orch_settings, "catalog"), auth(orch_settings, "reader")
    async with app_client(orch_settings) as client:
        put = await client.put(routes.catalog_item_path("b1"), json=BOOK, headers=writer)
        assert put.status_code == 200, put.text
        assert put.json() == {"item_id": "b1", **BOOK}
        got = await client.get(routes.catalog_item_path("b1"), headers=reader)
        assert got.status_code == 200 and got.json() == {"item_id": "b1", **BOOK}

        patched = await client.patch(
            routes.catalog_item_path("b1"), json={"year": 1999, "tags": None}, headers=writer
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["year"] == 1999 and "tags" not in patched.json()
        assert patched.json()["title"] == "A Book"

        deleted = await client.delete(routes.catalog_item_path("b1"), headers=writer)
        assert deleted.status_code == 200 and deleted.json() == {"item_id": "b1", "deleted": True}
        gone = await client.get(routes.catalog_item_path("b1"), headers=reader)
        assert gone.status_code == 404 and gone.json()["error"] == "UnknownItem"
        for missing in (
            await client.patch(routes.catalog_item_path("b1"), json={"year": 1}, headers=writer),
            await client.delete(routes.catalog_item_path("b1"), headers=writer),
        ):
            assert missing.status_code == 404 and missing.json()["error"] == "UnknownItem"
    events = _events(redis_client, keys)
    assert [(e.kind, e.item_id) for e in events] == [
        (ChangeKind.UPSERT, "b1"),
        (ChangeKind.UPSERT, "b1"),
        (ChangeKind.DELETE, "b1"),
    ]
    assert events[1].doc is not None and events[1].doc["year"] == 1999


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BOOK, "year": "2001"}, "year"),
        ({**BOOK, "year": 2**40}, "year"),
        ({**BOOK, "colour": "red"}, "colour"),
        ({**BOOK, "authors": "Someone"}, "authors"),
        ({**BOOK, "average_rating": True}, "average_rating"),
        ({**BOOK, "item_id": "b2"}, "item_id"),
        ({**BOOK, "title": "x" * 2000}, "title"),
    ],
)
async def test_bad_items_are_refused_naming_the_field_and_nothing_is_written(
    app_client: AppFactory,
    orch_settings: Settings,
    redis_client: redis.Redis,
    keys: Keys,
    body: dict,
    field: str,
) -> None:
    async with app_client(orch_settings) as client:
        refused = await client.put(
            routes.catalog_item_path("b1"), json=body, headers=auth(orch_settings, "catalog")
        )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "InvalidField" and refused.json()["detail"].startswith(f"{field}:")
    assert not redis_client.exists(keys.catalog_item("b1"), keys.catalog_changes())


async def test_a_body_over_the_limit_is_413_before_anything_is_parsed(
    app_client: AppFactory, orch_settings: Settings
) -> None:
    async with app_client(orch_settings) as client:
        huge = await client.put(
            routes.catalog_item_path("b1"),
            json={**BOOK, "title": "x" * 10_000_000},
            headers=auth(orch_settings, "catalog"),
        )
    assert huge.status_code == 413 and huge.json()["error"] == "BodyTooLarge"


async def test_a_batch_is_all_checked_before_any_of_it_is_written(
    app_client: AppFactory, orch_settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    writer = auth(orch_settings, "catalog")
    good = [{"item_id": f"b{n}", **BOOK} for n in range(1, 6)]
    async with app_client(orch_settings) as client:
        bad = await client.post(
            routes.CATALOG_BATCH,
            json={"upsert": [*good, {"item_id": "b6", **BOOK, "year": 1.5}]},
            headers=writer,
        )
        assert bad.status_code == 422 and bad.json()["detail"].startswith("upsert[5].year:"), bad.text
        assert not redis_client.exists(keys.catalog_ids())
        both = await client.post(
            routes.CATALOG_BATCH, json={"upsert": good, "delete": ["b1"]}, headers=writer
        )
        assert both.status_code == 422 and both.json()["detail"].startswith("delete:")
        empty = await client.post(routes.CATALOG_BATCH, json={}, headers=writer)
        assert empty.status_code == 422
        too_many = await client.post(
            routes.CATALOG_BATCH, json={"delete": [f"b{n}" for n in range(1001)]}, headers=writer
        )
        assert too_many.status_code == 422

        written = await client.post(routes.CATALOG_BATCH, json={"upsert": good}, headers=writer)
        assert written.status_code == 200 and written.json() == {"upserted": 5, "deleted": 0}
        mixed = await client.post(
            routes.CATALOG_BATCH,
            json={"upsert": [{"item_id": "b9", **BOOK}], "delete": ["b1", "b2", "b404"]},
            headers=writer,
        )
        assert mixed.status_code == 200 and mixed.json() == {"upserted": 1, "deleted": 2}
    assert {m.decode() for m in redis_client.smembers(keys.catalog_ids())} == {"b3", "b4", "b5", "b9"}


async def test_writes_need_the_catalog_role(app_client: AppFactory, orch_settings: Settings) -> None:
    async with app_client(orch_settings) as client:
        for role in ("reader", "indexer"):
            refused = await client.put(
                routes.catalog_item_path("b1"), json=BOOK, headers=auth(orch_settings, role)
            )
            assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
        anonymous = await client.delete(routes.catalog_item_path("b1"))
        assert anonymous.status_code == 401
        admin = await client.put(
            routes.catalog_item_path("b1"), json=BOOK, headers=auth(orch_settings, "admin")
        )
        assert admin.status_code == 200
        shown = await client.get(routes.ITEM_SCHEMA, headers=auth(orch_settings, "reader"))
        assert shown.status_code == 200 and shown.json()["fingerprint"] == schema().fingerprint()


async def test_a_catalog_of_another_schema_is_409(
    app_client: AppFactory, orch_settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    redis_client.set(
        keys.catalog_schema(), '{"name": "older", "fingerprint": "0000", "schema": {"fields": {"title": {}}}}'
    )
    async with app_client(orch_settings) as client:
        refused = await client.put(
            routes.catalog_item_path("b1"), json=BOOK, headers=auth(orch_settings, "catalog")
        )
    assert refused.status_code == 409 and refused.json()["error"] == "CatalogSchemaChanged"
    assert "'older'" in refused.json()["detail"] and "removed none" in refused.json()["detail"]
    assert not redis_client.exists(keys.catalog_item("b1"))
