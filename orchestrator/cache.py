"""A bounded in-process LRU of vectors; versions are immutable, so entries never go stale."""

from __future__ import annotations

from collections.abc import Iterable

from cachetools import LRUCache

from contract.keys import Kind
from contract.vectors import Matrix

CacheKey = tuple[str, str, Kind, str]  # (type, version, kind, entity id)


class VectorCache:
    """LRU keyed by (type, version, kind, id) with hit/miss counters; size 0 disables it."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: LRUCache[CacheKey, Matrix] = LRUCache(max_entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, type_name: str, version: str, kind: Kind, ids: Iterable[str]) -> dict[str, Matrix]:
        """The cached vectors among `ids`; counts a hit or a miss per id."""
        found: dict[str, Matrix] = {}
        entries = self._entries
        for entity in ids:
            vector = entries.get((type_name, version, kind, entity))
            if vector is None:
                self.misses += 1
                continue
            found[entity] = vector
            self.hits += 1
        return found

    def put_many(self, type_name: str, version: str, kind: Kind, vectors: dict[str, Matrix]) -> None:
        """Remember vectors, evicting the least recently used beyond the bound."""
        if self.max_entries <= 0:
            return
        entries = self._entries
        for entity, vector in vectors.items():
            vector.flags.writeable = False  # shared between requests: nobody may modify it in place
            entries[(type_name, version, kind, entity)] = vector
