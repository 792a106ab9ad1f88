"""Small in-process TTL caches with hit/miss counters (one event loop: no locks needed)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter

V = TypeVar("V")


class TtlCache(Generic[V]):
    """A bounded LRU whose entries expire `ttl` seconds after they were stored."""

    def __init__(self, name: str, ttl: float, max_entries: int, counter: Counter | None = None) -> None:
        self.name = name
        self.ttl = ttl
        self.max_entries = max_entries
        # The two labelled children, resolved once (labels() costs more than the lookup it counts).
        self._counts = (
            {o: counter.labels(cache=name, outcome=o) for o in ("hit", "miss")} if counter is not None else {}
        )
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        """The live value for `key`, or None (counted as a hit or a miss)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self._entries.move_to_end(key)
            self._count("hit")
            return entry[1]
        if entry is not None:
            del self._entries[key]
        self._count("miss")
        return None

    def put(self, key: Hashable, value: V) -> None:
        """Store `value` (no-op when the cache is disabled by ttl 0)."""
        if self.ttl <= 0 or self.max_entries <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

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
    """The last value seen per key, however old: what degradation falls back on."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def put(self, key: Hashable, value: V) -> None:
        """Remember `value` as the newest for `key`."""
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, key: Hashable) -> tuple[float, V] | None:
        """(age in seconds, value) or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        return time.monotonic() - entry[0], entry[1]
