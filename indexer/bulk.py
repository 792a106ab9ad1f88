"""Concurrent bulk writes: a few chunks in flight at once, every chunk's per-item results checked."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType

from indexer.errors import DocumentRejectedError
from indexer.throttle import Throttle
from search.port import SearchEngine
from search.requests import BulkAction
from search.results import BulkReport


class BulkWriter:
    """Sends chunks through the search port's `bulk_write`, at most `workers` in flight at once.

    The caller keeps fetching the next chunk while earlier ones are being indexed, so fetching from
    the orchestrator and OpenSearch's indexing overlap; a single worker is the plain sequential path.
    `submit` waits once `workers` chunks are pending (memory stays bounded) and raises the first
    rejection it sees, so a cycle stops early instead of writing the rest of a doomed build.
    `wait_for_active_shards` holds each chunk until that many copies of its shards are active.
    `throttle` paces the chunks (a cap, a CPU budget: `indexer.throttle`).
    """

    def __init__(
        self,
        search: SearchEngine,
        workers: int,
        what: str,
        on_written: Callable[[int], None] | None = None,
        wait_for_active_shards: str | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers={workers} must be at least 1")
        self._search = search
        self._workers = workers
        self._what = what
        self._on_written = on_written or (lambda _n: None)
        self._active_shards = wait_for_active_shards
        self._pending: deque[asyncio.Task[BulkReport]] = deque()
        self._throttle = throttle
        self.written = 0
        self.retries = 0

    async def __aenter__(self) -> BulkWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                await self.drain()
        finally:
            await self._settle()

    async def submit(self, actions: Sequence[BulkAction]) -> None:
        """Queue one chunk; waits for the oldest chunk first when `workers` are already in flight."""
        if not actions:
            return
        while len(self._pending) >= self._workers:
            await self._harvest(self._pending.popleft())
        if self._throttle is not None:
            await self._throttle.acquire(len(actions))
        write = self._search.bulk_write(list(actions), wait_for_active_shards=self._active_shards)
        self._pending.append(asyncio.create_task(write))

    async def drain(self) -> int:
        """Wait for every queued chunk; returns the documents written so far."""
        while self._pending:
            await self._harvest(self._pending.popleft())
        return self.written

    async def _settle(self) -> None:
        # After a failure: chunks already sent finish (their outcome no longer matters), nothing more is sent.
        await asyncio.gather(*self._pending, return_exceptions=True)
        self._pending.clear()

    async def _harvest(self, task: asyncio.Task[BulkReport]) -> None:
        report = await task
        self.retries += report.retries
        if not report.ok:
            item_id, reason = min(report.failed.items())
            raise DocumentRejectedError(
                f"{self._what}: OpenSearch rejected item {item_id!r}: {reason} "
                f"({len(report.failed)} item(s) rejected in this chunk); not promoting"
            )
        self.written += len(report.succeeded)
        self._on_written(len(report.succeeded))


async def write_all(
    search: SearchEngine,
    actions: Sequence[BulkAction],
    chunk_size: int,
    workers: int,
    what: str,
    on_written: Callable[[int], None] | None = None,
) -> int:
    """Write every action in chunks of `chunk_size` with `workers` in flight; returns documents written."""
    async with BulkWriter(search, workers, what, on_written) as writer:
        for start in range(0, len(actions), chunk_size):
            await writer.submit(actions[start : start + chunk_size])
    return writer.written
