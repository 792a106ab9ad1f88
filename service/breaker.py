"""A circuit breaker per dependency: after repeated failures stop waiting on a dead one for a moment.

A breaker opens after `threshold` consecutive failures and lets one probe through every `cooldown`
seconds; the first success closes it. With cooldown 1 s, a caller is back on a returned dependency within
about a second (serving's target is recovery within 5 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Breaker:
    """A circuit breaker for one dependency, on `clock` (tests pass one they advance instead of sleeping)."""

    name: str
    threshold: int = 2
    cooldown: float = 1.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    failures: int = 0
    opened_at: float | None = None
    _probe_at: float = field(default=0.0, repr=False)

    def allow(self) -> bool:
        """Whether to call the dependency now (closed, or open and due for a probe)."""
        if self.opened_at is None:
            return True
        now = self.clock()
        if now >= self._probe_at:
            self._probe_at = now + self.cooldown  # one probe per cooldown; the rest degrade at once
            return True
        return False

    def success(self) -> None:
        """A call succeeded: close."""
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        """A call failed: count, and open at the threshold."""
        self.failures += 1
        if self.failures >= self.threshold and self.opened_at is None:
            self.opened_at = self.clock()
            self._probe_at = self.opened_at + self.cooldown

    @property
    def is_open(self) -> bool:
        """Whether the breaker currently short-circuits calls."""
        return self.opened_at is not None
