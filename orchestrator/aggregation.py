"""Weighted aggregation of attribute vectors: a pure function, tested without servers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from contract.vectors import DTYPE, Matrix


@dataclass(frozen=True)
class Aggregate:
    """A weighted sum and which attributes went into it."""

    vector: Matrix
    used: tuple[str, ...]
    missing: tuple[str, ...]


def weighted_sum(
    weighted: Sequence[tuple[str, float]], vectors: Mapping[str, Matrix], dim: int, normalize: bool
) -> Aggregate | None:
    """Sum `weight * vector` over attributes that have a vector; None when none has one.

    Repeated ids add up (a user who read a book twice weighs it twice). Normalising a zero sum
    (vectors cancelling out) leaves it zero rather than dividing by zero.
    """
    total = np.zeros(dim, dtype=np.float64)  # accumulate in float64: thousands of terms lose float32 bits
    used: dict[str, None] = {}  # dicts as ordered sets: first-seen order, O(1) membership
    missing: dict[str, None] = {}
    for attribute, weight in weighted:
        vector = vectors.get(attribute)
        if vector is None:
            missing[attribute] = None
            continue
        total += weight * vector.astype(np.float64)
        used[attribute] = None
    if not used:
        return None
    if normalize:
        norm = float(np.linalg.norm(total))
        if norm > 0:
            total /= norm
    return Aggregate(total.astype(DTYPE), tuple(used), tuple(missing))
