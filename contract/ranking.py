"""Top-k ranking metrics with binary relevance: recall@k, nDCG@k and MAP@k, of one list or many at once.

A list is scored through its hits: hits[..., r] says whether its r-th item is relevant (an item repeated in
a list counts once). `n_relevant` is how many relevant items each list had to find, at least one; every
metric caps it at k, so a perfect list scores 1 even when more than k items are relevant. Given one list's
hits (shape (k,)) a metric is a 0-d array (float() it); given a matrix (lists, k), one figure per list.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from itertools import islice

import numpy as np
import numpy.typing as npt

Hits = npt.NDArray[np.bool_]
Figures = npt.NDArray[np.float64]

# Engines score in float32: two scores this close (relative to the larger of 1 and the reference) are equal.
SCORE_SLACK = 1e-5


def hits(ranked: Iterable[Hashable], relevant: Collection[Hashable], k: int) -> Hits:
    """hits[r]: whether the r-th of the first k ranked items is relevant and new (False past the end)."""
    row = np.zeros(k, dtype=np.bool_)
    found: set[Hashable] = set()
    for rank, item in enumerate(islice(ranked, k)):
        if item in relevant and item not in found:
            row[rank] = True
            found.add(item)
    return row


def hit_matrix(
    ranked: Iterable[Iterable[Hashable]], relevant: Iterable[Collection[Hashable]], k: int
) -> Hits:
    """hits() of each list against its own relevant items, stacked: shape (lists, k)."""
    rows = [hits(items, wanted, k) for items, wanted in zip(ranked, relevant, strict=True)]
    return np.array(rows, dtype=np.bool_).reshape(len(rows), k)


def recall_at_k(hits: Hits, n_relevant: npt.ArrayLike) -> Figures:
    """Relevant items in the top k over min(relevant, k)."""
    return np.asarray(hits.sum(axis=-1) / _most_hits(hits, n_relevant), dtype=np.float64)


def ndcg_at_k(hits: Hits, n_relevant: npt.ArrayLike) -> Figures:
    """DCG@k (a hit at rank r gains 1 / log2(r + 1)) over the DCG of min(relevant, k) hits at the top."""
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[-1] + 2))
    ideal = np.cumsum(discounts)[_most_hits(hits, n_relevant) - 1]
    return np.asarray((hits * discounts).sum(axis=-1) / ideal, dtype=np.float64)


def map_at_k(hits: Hits, n_relevant: npt.ArrayLike) -> Figures:
    """Average precision@k: the precision at each hit, summed, over min(relevant, k)."""
    precision = np.cumsum(hits, axis=-1) / np.arange(1, hits.shape[-1] + 1)
    return np.asarray((precision * hits).sum(axis=-1) / _most_hits(hits, n_relevant), dtype=np.float64)


def _most_hits(hits: Hits, n_relevant: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """min(relevant, k) per list: the hits a perfect top k holds."""
    counts = np.asarray(n_relevant, dtype=np.int64)
    if hits.shape[-1] < 1 or (counts < 1).any():
        raise ValueError("ranking metrics need k >= 1 and at least one relevant item per list")
    return np.minimum(counts, hits.shape[-1])


def tie_slack(reference: float) -> float:
    """How far a score may lie from `reference` and still equal it (float32 rounding, see SCORE_SLACK)."""
    return SCORE_SLACK * max(1.0, abs(reference))
