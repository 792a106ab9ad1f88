"""Catalog changes: the store's change stream read through a consumer group, acknowledged only after indexing.

Acknowledged entries are trimmed from the stream (up to the oldest one still pending), so it holds only what
the indexer has not applied yet.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aioredis

from catalog.changes import CatalogChange, decode
from contract.keys import Keys

GROUP = "indexer"


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

    async def position(self) -> str:
        """The newest entry's id ("0-0" if none): a catalog read started after now includes up to it."""
        newest: Any = await self._client.xrevrange(self._stream, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    async def start_at(self, entry_id: str) -> None:
        """Forget every entry up to `entry_id` (the live index was started from a catalog read after it).

        The group is made anew there, so nothing read before (and not acknowledged) is applied again over
        the newer catalog; the entries are trimmed.
        """
        await self._client.xgroup_destroy(self._stream, GROUP)
        await self._client.xgroup_create(self._stream, GROUP, id=entry_id, mkstream=True)
        self._grouped = True
        if entry_id != "0-0":
            await self._client.xtrim(self._stream, minid=_after(entry_id), approximate=False)

    async def pages(self, count: int, size: int) -> AsyncIterator[list[CatalogChange]]:
        """Up to `count` entries not yet acknowledged, at most `size` at a time: first those this consumer
        read before (a crashed cycle), then new ones. A page may be short or empty (entries deleted while
        pending count, and are skipped and acknowledged); the caller may act on a page while the next is
        read."""
        await self._ensure_group()
        left, cursor = count, "0"
        while left > 0:  # pending entries, from after the last one returned
            page, last, got = await self._read(cursor, min(size, left))
            if not got:
                break
            left, cursor = left - got, last
            yield page
        while left > 0:  # ">": entries never delivered to the group
            page, _last, got = await self._read(">", min(size, left))
            if not got:
                break
            left -= got
            yield page

    async def _read(self, start: str, count: int) -> tuple[list[CatalogChange], str, int]:
        """The changes of up to `count` entries after `start`, the last entry's id, and how many came."""
        reply: Any = await self._client.xreadgroup(GROUP, self._consumer, {self._stream: start}, count=count)
        out: list[CatalogChange] = []
        gone: list[str] = []
        last, got = start, 0
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last, got = _text(entry_id), got + 1
                if not fields:  # a pending entry deleted from the stream: nothing to index
                    gone.append(last)
                    continue
                out.append(decode(entry_id, fields))
        if gone:
            # Acknowledged now, or it stays pending for good, and the trim point (the oldest pending
            # entry) with it: the stream would never be trimmed past it again.
            await self._client.xack(self._stream, GROUP, *gone)
        return out, last, got

    async def ack(self, changes: list[CatalogChange]) -> None:
        """Acknowledge indexed changes, and trim the stream up to the oldest entry still pending."""
        if not changes:
            return
        await self._client.xack(self._stream, GROUP, *[c.entry_id for c in changes])
        summary = await self._client.xpending(self._stream, GROUP)
        oldest = summary.get("min") if summary.get("pending") else None
        # MINID keeps entries at or after it: the oldest pending one, else the next after the last acked.
        keep = _text(oldest) if oldest else _after(max((c.entry_id for c in changes), key=_entry_order))
        await self._client.xtrim(self._stream, minid=keep, approximate=False)

    async def pending(self) -> int:
        """How many entries are read but not acknowledged."""
        await self._ensure_group()
        info = await self._client.xpending(self._stream, GROUP)
        return int(info["pending"])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_order(entry_id: str) -> tuple[int, int]:
    millis, seq = entry_id.split("-")
    return int(millis), int(seq)


def _after(entry_id: str) -> str:
    millis, seq = _entry_order(entry_id)
    return f"{millis}-{seq + 1}"
