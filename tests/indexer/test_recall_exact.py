"""Exact top-k and recall, per similarity."""

from __future__ import annotations

import numpy as np

from contract.types import Similarity
from indexer.recall import exact_top_k, recall_at_k


def test_exact_top_k_per_similarity() -> None:
    ids = ["a", "b", "c"]
    m = np.array([[1, 0], [3, 0], [0, 1]], dtype=np.float32)
    q = np.array([1, 0.1], dtype=np.float32)
    assert exact_top_k(ids, m, q, Similarity.DOT, 2) == ["b", "a"]
    assert exact_top_k(ids, m, q, Similarity.COSINE, 1) in (["a"], ["b"])
    assert exact_top_k(ids, m, q, Similarity.L2, 1) == ["a"]


def test_recall() -> None:
    assert recall_at_k(["a", "b"], ["b", "c"]) == 0.5
    assert recall_at_k([], []) == 1.0
