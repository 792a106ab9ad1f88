"""Tests put items into the catalog store the way `lockstep catalog load` does, from sync or async code."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from catalog.store import CatalogStore
from contract.items import schema
from contract.keys import Keys
from contract.redis_clients import async_client
from contract.replication import Replication
from contract.settings import DataSettings, StoreSettings
from examples.goodbooks.loader import goodbooks_items
from indexer.catalog import Item


async def _put(settings: StoreSettings, docs: Sequence[Mapping[str, Any]]) -> None:
    client = async_client(settings)
    try:
        await CatalogStore(client, Keys(settings.key_prefix), schema(), Replication.of(settings)).put(docs)
    finally:
        await client.aclose()


def put_items(settings: StoreSettings, docs: Sequence[Mapping[str, Any]]) -> None:
    """Create or replace items in the catalog of the settings' key prefix (on a loop of its own)."""
    with ThreadPoolExecutor(1) as pool:  # a test's own event loop may be running in this thread
        pool.submit(asyncio.run, _put(settings, docs)).result()


def load_goodbooks(settings: StoreSettings, limit: int) -> list[Item]:
    """The first `limit` goodbooks books, put into the catalog store; returned as items."""
    items = [Item.from_document(doc) for doc in goodbooks_items(DataSettings().data_dir, limit)]
    put_items(settings, [item.document() for item in items])
    return items
