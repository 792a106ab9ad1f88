"""serving.caches on an injected clock: TTL expiry, LRU bound, hit/miss counters, last-good ages."""

from __future__ import annotations

from manual_clock import ManualClock
from prometheus_client import CollectorRegistry

from serving.caches import LastGood, TtlCache
from serving.metrics import LoopCounter


def _counter() -> tuple[LoopCounter, CollectorRegistry]:
    registry = CollectorRegistry()
    return LoopCounter("cache", "Lookups.", ["cache", "outcome"], registry), registry


def test_ttl_cache_entries_expire_ttl_after_they_were_stored() -> None:
    clock = ManualClock()
    counter, registry = _counter()
    cache: TtlCache[str] = TtlCache("user_vector", 5.0, 10, counter, timer=clock)
    cache.put("a", "A")
    clock.advance(4.999)
    assert cache.get("a") == "A"
    cache.put("b", "B")
    clock.advance(0.001)
    assert cache.get("a") is None  # stored 5 s ago: a read does not extend it
    assert cache.get("b") == "B"
    assert len(cache) == 1

    def count(outcome: str) -> float | None:
        return registry.get_sample_value("cache_total", {"cache": "user_vector", "outcome": outcome})

    assert (count("hit"), count("miss")) == (2.0, 1.0)


def test_ttl_cache_is_a_bounded_lru() -> None:
    cache: TtlCache[int] = TtlCache("result", 60.0, 2, timer=ManualClock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)  # evicts "b"
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None


def test_ttl_or_size_zero_disables_the_cache() -> None:
    for ttl, size in ((0.0, 10), (5.0, 0)):
        cache: TtlCache[int] = TtlCache("result", ttl, size, timer=ManualClock())
        cache.put("a", 1)
        assert not cache.enabled and cache.get("a") is None and len(cache) == 0


def test_last_good_keeps_values_however_old_and_says_how_old() -> None:
    clock = ManualClock()
    last: LastGood[list[str]] = LastGood(2, timer=clock)
    assert last.get("x") is None
    last.put("x", ["1"])
    clock.advance(3600.0)
    assert last.get("x") == (3600.0, ["1"])
    last.put("x", ["2"])
    assert last.get("x") == (0.0, ["2"])
    last.put("y", [])
    last.put("z", ["3"])  # bounded: the least recently used key goes
    assert last.get("x") is None
    assert sorted(map(tuple, last.values())) == [(), ("3",)]
