"""Catalog changes: a Redis Stream read through a consumer group, acknowledged only after indexing."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis
import redis.asyncio as aioredis

from contract.keys import Keys
from indexer.catalog import Item

GROUP = "indexer"


class ChangeKind(StrEnum):
    """What happened to an item."""

    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True)
class CatalogChange:
    """One stream entry: an upsert carries the item, a delete only its id."""

    entry_id: str
    kind: ChangeKind
    item_id: str
    item: Item | None


def publish_change(
    client: redis.Redis, keys: Keys, kind: ChangeKind, item: Item | None = None, item_id: str | None = None
) -> str:
    """Append a change to the stream (the catalog side, demos and tests); returns the entry id."""
    if kind is ChangeKind.UPSERT:
        if item is None:
            raise ValueError("an upsert needs the item")
        fields: dict[Any, Any] = {
            "kind": kind.value,
            "item_id": item.item_id,
            "item": json.dumps(item.document()),
        }
    else:
        target = item_id or (item.item_id if item else None)
        if not target:
            raise ValueError("a delete needs item_id")
        fields = {"kind": kind.value, "item_id": target}
    entry = client.xadd(keys.catalog_changes(), fields)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ChangeConsumer:
    """Reads pending-then-new entries of the group; `ack` only after the change is indexed and refreshed."""

    def __init__(self, client: aioredis.Redis, keys: Keys, consumer: str | None = None) -> None:
        self._client = client
        self._stream = keys.catalog_changes()
        self._consumer = consumer or f"{socket.gethostname()}"
        self._grouped = False

    async def _ensure_group(self) -> None:
        if self._grouped:
            return
        try:
            # id "0": a fresh group sees every change ever published (the live index starts from the
            # full catalog anyway, and replaying an upsert is idempotent).
            await self._client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped = True

    async def read(self, count: int = 1000) -> list[CatalogChange]:
        """Entries not yet acknowledged: first those this consumer read before (a crashed cycle), then new."""
        await self._ensure_group()
        changes = await self._read("0", count)
        if len(changes) < count:
            changes += await self._read(">", count - len(changes))
        return changes

    async def _read(self, start: str, count: int) -> list[CatalogChange]:
        reply: Any = await self._client.xreadgroup(GROUP, self._consumer, {self._stream: start}, count=count)
        out: list[CatalogChange] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                if not fields:  # pending entry deleted from the stream: nothing to index
                    continue
                data = {_text(k): _text(v) for k, v in fields.items()}
                kind = ChangeKind(data["kind"])
                item = Item.from_document(json.loads(data["item"])) if kind is ChangeKind.UPSERT else None
                out.append(CatalogChange(_text(entry_id), kind, data["item_id"], item))
        return out

    async def ack(self, changes: list[CatalogChange]) -> None:
        """Acknowledge indexed changes."""
        if changes:
            await self._client.xack(self._stream, GROUP, *[c.entry_id for c in changes])

    async def pending(self) -> int:
        """How many entries are read but not acknowledged."""
        await self._ensure_group()
        info = await self._client.xpending(self._stream, GROUP)
        return int(info["pending"])
