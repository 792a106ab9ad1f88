"""One indexer cycle at a time per target: a Redis lock with expiry, renewed while the cycle runs."""

from __future__ import annotations

import threading
import time
import uuid
from types import TracebackType

import redis

from contract.keys import Keys
from indexer.errors import LockBusyError

# Release and renew only if we still hold it: an expired lock taken by another indexer is not ours.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


class IndexerLock:
    """Context manager holding `keys.indexer_lock(target)`; a background thread renews the expiry.

    If the process dies (even SIGKILL) the lock expires after `ttl_seconds`, so a crashed cycle
    never blocks the next one for longer than that.
    """

    def __init__(
        self, client: redis.Redis, keys: Keys, target: str, ttl_seconds: float, wait_seconds: float = 0.0
    ) -> None:
        self._client = client
        self.key = keys.indexer_lock(target)
        self._ttl_ms = max(100, int(ttl_seconds * 1000))
        self._wait = wait_seconds
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = threading.Event()

    def acquire(self) -> None:
        """Take the lock, waiting up to `wait_seconds`; raise LockBusyError otherwise."""
        deadline = time.monotonic() + self._wait
        while not self._client.set(self.key, self.token, nx=True, px=self._ttl_ms):
            if time.monotonic() >= deadline:
                holder = self._client.get(self.key)
                raise LockBusyError(f"{self.key} is held by another indexer cycle (token {holder!r})")
            time.sleep(min(0.2, self._ttl_ms / 4000))
        self._thread = threading.Thread(target=self._renew_loop, name=f"lock-renew {self.key}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._ttl_ms / 3000):
            try:
                if not self._client.eval(_RENEW, 1, self.key, self.token, self._ttl_ms):
                    self.lost.set()
                    return
            except redis.RedisError:
                continue  # transient; the next tick retries before the expiry

    def check(self) -> None:
        """Raise LockBusyError if the lock was lost (expired, taken): the cycle must not promote."""
        if self.lost.is_set():
            raise LockBusyError(f"{self.key} was lost during the cycle; not promoting")

    def release(self) -> None:
        """Stop renewing and delete the lock if still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._client.eval(_RELEASE, 1, self.key, self.token)

    def __enter__(self) -> IndexerLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
