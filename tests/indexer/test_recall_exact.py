"""Exact top-k and recall, per similarity."""

from __future__ import annotations

import numpy as np

from contract.types import Similarity
from indexer.recall import exact_scores, exact_top_k, recall_at_k, recall_with_ties


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


def test_recall_counts_items_tied_with_the_kth_as_matches() -> None:
    # b, c and d share one vector: any one of them completes a top-2 after a.
    ids = ["a", "b", "c", "d", "e"]
    m = np.array([[2, 0], [1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    scores = exact_scores(m, np.array([1, 0], dtype=np.float32), Similarity.DOT)
    position = {item: n for n, item in enumerate(ids)}
    assert recall_with_ties(["a", "d"], position, scores, 2) == 1.0
    assert recall_with_ties(["a", "e"], position, scores, 2) == 0.5
    assert recall_with_ties(["c", "b", "d"], position, scores, 2) == 0.5  # ties never stand in for a
    assert recall_with_ties(["e", "e"], position, scores, 2) == 0.0  # repeats count once
    assert recall_with_ties([], {}, np.zeros(0, dtype=np.float32), 2) == 1.0
