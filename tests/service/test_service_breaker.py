"""service.breaker on an injected clock: opens at the threshold, one probe per cooldown, closes on success."""

from __future__ import annotations

from manual_clock import ManualClock

from service.breaker import Breaker


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker = Breaker("dep", threshold=3, clock=ManualClock())
    breaker.failure()
    breaker.success()  # a success in between resets the count
    breaker.failure()
    breaker.failure()
    assert not breaker.is_open and breaker.allow()
    breaker.failure()
    assert breaker.is_open and breaker.opened_at == 100.0
    assert not breaker.allow()


def test_one_probe_per_cooldown_while_open() -> None:
    clock = ManualClock()
    breaker = Breaker("dep", threshold=1, cooldown=1.0, clock=clock)
    breaker.failure()
    clock.advance(0.999)
    assert not breaker.allow()
    clock.advance(0.001)
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else degrades at once
    breaker.failure()  # the probe failed: still open, next probe one cooldown after it
    assert breaker.is_open and breaker.opened_at == 100.0
    clock.advance(0.5)
    assert not breaker.allow()
    clock.advance(0.5)
    assert breaker.allow()


def test_a_successful_probe_closes() -> None:
    clock = ManualClock()
    breaker = Breaker("dep", clock=clock)
    breaker.failure()
    breaker.failure()
    clock.advance(breaker.cooldown)
    assert breaker.allow()
    breaker.success()
    assert not breaker.is_open and breaker.failures == 0
    assert all(breaker.allow() for _ in range(3))
    breaker.failure()  # counting starts over
    assert not breaker.is_open
