"""Exact nearest neighbours in numpy, and recall@k of an index's answers against them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from contract import ranking
from contract.types import Similarity
from contract.vectors import Matrix


def exact_scores(matrix: Matrix, query: Matrix, similarity: Similarity) -> Matrix:
    """Scores of every row against one query, larger is nearer (l2 as negative squared distance)."""
    if similarity is Similarity.DOT:
        return matrix @ query
    if similarity is Similarity.COSINE:
        norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(query))
        return np.where(norms > 0, (matrix @ query) / np.where(norms > 0, norms, 1.0), -1.0).astype(
            np.float32
        )
    diff = matrix - query
    distances: Matrix = np.einsum("ij,ij->i", diff, diff)
    return -distances


def exact_top_k(
    ids: Sequence[str], matrix: Matrix, query: Matrix, similarity: Similarity, k: int
) -> list[str]:
    """The `k` nearest ids by exact scoring (ties broken by position, as good as any)."""
    scores = exact_scores(matrix, query, similarity)
    k = min(k, len(ids))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [ids[i] for i in top]


def recall_at_k(approximate: Sequence[str], exact: Sequence[str]) -> float:
    """Share of the exact top-k the approximate answer's top k found (1.0 when there is nothing to find)."""
    if not exact:
        return 1.0
    return float(ranking.recall_at_k(ranking.hits(approximate, set(exact), len(exact)), len(exact)))


def recall_with_ties(
    approximate: Sequence[str], position: Mapping[str, int], scores: Matrix, k: int
) -> float:
    """Share of the exact top-k the approximate answer matched, counting ties with the k-th as matches.

    Items with identical vectors are common (a tag/author model gives books with the same tags and author
    the same vector), and whichever of the tied items an index returns is as right as exact_top_k's pick.
    """
    k = min(k, len(scores))
    if k == 0:
        return 1.0
    kth = float(np.partition(scores, len(scores) - k)[len(scores) - k])
    slack = ranking.tie_slack(kth)  # the engine scores in float32 too; allow its rounding
    above = int(np.count_nonzero(scores > kth + slack))  # these must each be found
    found = [float(scores[position[i]]) for i in dict.fromkeys(approximate) if i in position]
    strictly = sum(1 for s in found if s > kth + slack)
    tied = sum(1 for s in found if kth - slack <= s <= kth + slack)
    # Tied items only fill the slots the strictly better ones leave.
    return (strictly + min(tied, k - above)) / k
