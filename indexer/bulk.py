"""Concurrent bulk writes: a few chunks in flight at once, every chunk's per-item results checked."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from opensearchpy import OpenSearch

from indexer.errors import DocumentRejectedError
from search import engine
from search.requests import BulkAction


class BulkWriter:
    """Sends chunks through search.engine.bulk_write on `workers` threads; at most `workers` in flight.

    The caller keeps fetching the next chunk while earlier ones are being indexed, so fetching from
    the orchestrator and OpenSearch's indexing overlap; a single worker is the plain sequential path.
    `submit` blocks once `workers` chunks are pending (memory stays bounded) and raises the first
    rejection it sees, so a cycle stops early instead of writing the rest of a doomed build.
    """

    def __init__(
        self,
        client: OpenSearch,
        workers: int,
        what: str,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers={workers} must be at least 1")
        self._client = client
        self._workers = workers
        self._what = what
        self._on_written = on_written or (lambda _n: None)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk")
        self._pending: deque[Future[engine.BulkReport]] = deque()
        self.written = 0
        self.retries = 0

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.drain()
        self.close()

    def close(self) -> None:
        """Stop the workers; chunks not yet started are dropped (only after a failure)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, actions: Sequence[BulkAction]) -> None:
        """Queue one chunk; waits for the oldest chunk first when `workers` are already in flight."""
        if not actions:
            return
        while len(self._pending) >= self._workers:
            self._harvest(self._pending.popleft())
        self._pending.append(self._pool.submit(engine.bulk_write, self._client, list(actions)))

    def drain(self) -> int:
        """Wait for every queued chunk; returns the documents written so far."""
        while self._pending:
            self._harvest(self._pending.popleft())
        return self.written

    def _harvest(self, future: Future[engine.BulkReport]) -> None:
        report = future.result()
        self.retries += report.retries
        if not report.ok:
            item_id, reason = min(report.failed.items())
            raise DocumentRejectedError(
                f"{self._what}: OpenSearch rejected item {item_id!r}: {reason} "
                f"({len(report.failed)} item(s) rejected in this chunk); not promoting"
            )
        self.written += len(report.succeeded)
        self._on_written(len(report.succeeded))


def write_all(
    client: OpenSearch,
    actions: Sequence[BulkAction],
    chunk_size: int,
    workers: int,
    what: str,
    on_written: Callable[[int], None] | None = None,
) -> int:
    """Write every action in chunks of `chunk_size` with `workers` in flight; returns documents written."""
    with BulkWriter(client, workers, what, on_written) as writer:
        for start in range(0, len(actions), chunk_size):
            writer.submit(actions[start : start + chunk_size])
    return writer.written
