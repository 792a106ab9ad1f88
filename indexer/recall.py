"""Exact nearest neighbours in numpy, and recall@k of an index's answers against them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
    """Share of the exact top-k the approximate answer found."""
    if not exact:
        return 1.0
    return len(set(approximate) & set(exact)) / len(exact)
