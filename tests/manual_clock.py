"""A clock for the injectable `clock=`/`timer=` of breakers and caches: time moves only when a test says."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ManualClock:
    """Monotonic seconds that stand still until advanced."""

    now: float = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.now += seconds
