"""Sticky A/B assignment: a user id always lands on the same embedding type for fixed weights."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

_SCALE = float(1 << 64)


@dataclass(frozen=True)
class Assignment:
    """Which type a request was served by, and why."""

    type_name: str
    source: str  # "request": the body named it; "ab": the sticky split chose it
    weights: tuple[tuple[str, float], ...]


def unit_hash(subject: str) -> float:
    """A stable number in [0, 1) for a subject (blake2b: same on every process and restart)."""
    digest = hashlib.blake2b(subject.encode("utf-8"), digest_size=8, person=b"lockstep-ab").digest()
    return int.from_bytes(digest, "big") / _SCALE


def assign(subject: str, weights: Mapping[str, float]) -> Assignment:
    """The type for `subject` under `weights` (names sorted, so dict order never moves anyone)."""
    ordered = tuple(sorted((name, w) for name, w in weights.items() if w > 0))
    if not ordered:
        raise ValueError("no embedding type has a positive weight")
    total = sum(w for _, w in ordered)
    point = unit_hash(subject) * total
    cumulative = 0.0
    for name, weight in ordered:
        cumulative += weight
        if point < cumulative:
            return Assignment(name, "ab", ordered)
    return Assignment(ordered[-1][0], "ab", ordered)  # float rounding at the very top
