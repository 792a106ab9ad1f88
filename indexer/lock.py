"""One indexer cycle at a time per target: redis-py's lock with expiry, renewed while the cycle runs."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError

from contract.keys import Keys
from contract.redis_clients import REDIS_FAILURES
from indexer.errors import LockBusyError


class IndexerLock:
    """Async context manager holding `keys.indexer_lock(target)`; a task renews the expiry.

    If the process dies (even SIGKILL) the lock expires after `ttl_seconds`, so a crashed cycle
    never blocks the next one for longer than that.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        target: str,
        ttl_seconds: float,
        wait_seconds: float = 0.0,
    ) -> None:
        self._client = client
        self.key = keys.indexer_lock(target)
        self._ttl = max(0.1, ttl_seconds)
        self._lock = Lock(
            client,
            self.key,
            timeout=self._ttl,
            sleep=min(0.2, self._ttl / 4),
            blocking=wait_seconds > 0,
            blocking_timeout=wait_seconds,
            thread_local=False,  # one event loop: the token belongs to this object, not to a thread
        )
        self._renewer: asyncio.Task[None] | None = None
        self.lost = False

    async def __aenter__(self) -> IndexerLock:
        """Take the lock, waiting up to `wait_seconds`; raise LockBusyError otherwise."""
        if not await self._lock.acquire():
            holder = await self._client.get(self.key)
            raise LockBusyError(f"{self.key} is held by another indexer cycle (token {holder!r})")
        self._renewer = asyncio.create_task(self._renew(), name=f"lock-renew {self.key}")
        return self

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                await self._lock.reacquire()
            except LockNotOwnedError:
                self.lost = True
                return
            except REDIS_FAILURES:
                continue  # transient; the next tick retries before the expiry

    def check(self) -> None:
        """Raise LockBusyError if the lock was lost (expired, taken): the cycle must not promote."""
        if self.lost:
            raise LockBusyError(f"{self.key} was lost during the cycle; not promoting")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop renewing and delete the lock if still ours."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        with contextlib.suppress(LockError):  # expired (and maybe taken by another cycle): not ours to delete
            await self._lock.release()
