"""Serving's in-process caches on cachetools, with hit/miss counters (one event loop: no locks needed)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from cachetools import LRUCache, TTLCache

from serving.metrics import LoopCounter

V = TypeVar("V")


class TtlCache(Generic[V]):
    """A bounded LRU whose entries expire `ttl` seconds after they were stored (by `timer`)."""

    def __init__(
        self,
        name: str,
        ttl: float,
        max_entries: int,
        counter: LoopCounter | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.ttl = ttl
        self.max_entries = max_entries
        # The two labelled children, resolved once (labels() costs more than the lookup it counts).
        self._counts = (
            {o: counter.labels(cache=name, outcome=o) for o in ("hit", "miss")} if counter is not None else {}
        )
        self._entries: TTLCache[Hashable, V] = TTLCache(max_entries, ttl, timer=timer)

    def get(self, key: Hashable) -> V | None:
        """The live value for `key`, or None (counted as a hit or a miss; a disabled cache always misses)."""
        # cachetools' get of an absent key raises and catches a KeyError inside: not for a cache that is off.
        value = self._entries.get(key) if self.enabled else None
        self._count("miss" if value is None else "hit")
        return value

    def put(self, key: Hashable, value: V) -> None:
        """Store `value` (no-op when the cache is disabled by ttl 0)."""
        if self.enabled:
            self._entries[key] = value

    @property
    def enabled(self) -> bool:
        """Whether put() stores anything."""
        return self.ttl > 0 and self.max_entries > 0

    def clear(self) -> None:
        """Drop everything."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _count(self, outcome: str) -> None:
        child = self._counts.get(outcome)
        if child is not None:
            child.inc()


class LastGood(Generic[V]):
    """The last value stored per key, however old (by `timer`): what degradation falls back on."""

    def __init__(self, max_entries: int, timer: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._timer = timer
        self._entries: LRUCache[Hashable, tuple[float, V]] = LRUCache(max_entries)

    def put(self, key: Hashable, value: V) -> None:
        """Remember `value` as the newest for `key`."""
        self._entries[key] = (self._timer(), value)

    def get(self, key: Hashable) -> tuple[float, V] | None:
        """(age in seconds, value) or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        return self._timer() - entry[0], entry[1]

    def values(self) -> Iterator[V]:
        """Every remembered value, least recently used first."""
        return (value for _, value in self._entries.values())
