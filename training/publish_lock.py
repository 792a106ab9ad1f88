"""The per-version publish lock: redis-py's `Lock`, whose token the commit script checks."""

from __future__ import annotations

from contextlib import suppress

from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from contract.keys import Keys
from contract.redis_clients import SyncRedis


def publish_lock(client: SyncRedis, keys: Keys, type_name: str, version: str, ttl_seconds: float) -> Lock:
    """The lock a publish, an unpublish and orphan removal of one version take.

    Not thread-local: the publish refreshes it while a worker thread checksums.
    """
    return Lock(
        client,
        keys.publish_lock(type_name, version),
        timeout=ttl_seconds,
        sleep=0.05,
        thread_local=False,
    )


def release(lock: Lock) -> None:
    """Release the lock if we still hold it: the commit deletes it, and an expired one may be another's."""
    with suppress(LockNotOwnedError):
        lock.release()


def token(lock: Lock) -> bytes:
    """The value the lock's key holds while we own it (the commit script compares it)."""
    value = lock.local.token
    if value is None:
        raise RuntimeError("the publish lock is not held")
    return bytes(value)
